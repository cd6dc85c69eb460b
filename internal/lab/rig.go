package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// The classic rig: host A — router R — host B.
//
//	A eth0 192.0.2.2/24 ── r0 [R] r1 ── eth0 198.51.100.2/24 B
//	                    192.0.2.1   198.51.100.1
//
// In ferry mode R's kernel has no addresses on r0/r1 and does not forward,
// so ferryd (reading r0/r1 through AF_PACKET) is the only thing that can
// answer ARP, ICMP or forward. In kernel mode R is an ordinary Linux router
// with the same addresses, the baseline ferry is compared against.
const (
	AddrA  = "192.0.2.2"
	AddrR0 = "192.0.2.1"
	AddrR1 = "198.51.100.1"
	AddrB  = "198.51.100.2"
	NetA   = "192.0.2.0/24"
	NetB   = "198.51.100.0/24"
	// Unrouted is an address nothing in the rig routes to.
	Unrouted = "203.0.113.77"

	// IPv6 (FerryConfig.IPv6): ferry's addresses; hosts configure theirs
	// from its router advertisements of NetAv6 and NetBv6.
	AddrR0v6   = "2001:db8:1::1"
	AddrR1v6   = "2001:db8:2::1"
	NetAv6     = "2001:db8:1::/64"
	NetBv6     = "2001:db8:2::/64"
	UnroutedV6 = "2001:db8:ff::77"
)

// Rig is the A—R—B topology.
type Rig struct {
	Lab     *Lab
	A, R, B *Netns
	kernel  bool
}

// NewRig builds the rig. kernelRouter selects kernel forwarding in R;
// otherwise R is left for ferryd. Hosts keep their default offloads (TSO,
// GSO, checksum offload): ferry must cope with what real hosts send.
func NewRig(l *Lab, kernelRouter bool) (*Rig, error) {
	r := &Rig{Lab: l}
	var err error
	if r.A, err = l.Netns("a"); err != nil {
		return nil, err
	}
	if r.R, err = l.Netns("r"); err != nil {
		return nil, err
	}
	if r.B, err = l.Netns("b"); err != nil {
		return nil, err
	}
	if err := l.Veth(r.A, "eth0", r.R, "r0"); err != nil {
		return nil, err
	}
	if err := l.Veth(r.B, "eth0", r.R, "r1"); err != nil {
		return nil, err
	}
	ctx := context.Background()
	steps := []struct {
		ns   *Netns
		args []string
	}{
		{r.A, []string{"ip", "addr", "add", AddrA + "/24", "dev", "eth0"}},
		{r.A, []string{"ip", "route", "add", "default", "via", AddrR0}},
		{r.B, []string{"ip", "addr", "add", AddrB + "/24", "dev", "eth0"}},
		{r.B, []string{"ip", "route", "add", "default", "via", AddrR1}},
		// ferryd, not R's kernel, answers IPv6 on r0 and r1 (ND, RAs);
		// keeping R's kernel off IPv6 also keeps its own router
		// solicitations out of ferry's counters.
		{r.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"}},
		{r.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"}},
	}
	for _, s := range steps {
		if _, err := s.ns.Run(ctx, s.args...); err != nil {
			return nil, err
		}
	}
	if err := r.SetKernelRouter(kernelRouter); err != nil {
		return nil, err
	}
	return r, nil
}

// MustRig is NewRig that fails the test (or panics) on error.
func MustRig(l *Lab, kernelRouter bool) *Rig {
	if l.tb != nil {
		l.tb.Helper()
	}
	r, err := NewRig(l, kernelRouter)
	if err != nil {
		l.fail(err)
	}
	return r
}

// KernelRouter reports whether R currently forwards with the kernel.
func (r *Rig) KernelRouter() bool { return r.kernel }

// SetKernelRouter switches R between kernel forwarding (addresses on r0/r1,
// ip_forward=1) and ferry mode (no addresses, ip_forward=0), so a benchmark
// can compare both on the same links. Hosts' ARP caches are flushed because
// the answering party changes.
func (r *Rig) SetKernelRouter(on bool) error {
	ctx := context.Background()
	var cmds [][]string
	if on {
		cmds = [][]string{
			{"ip", "addr", "replace", AddrR0 + "/24", "dev", "r0"},
			{"ip", "addr", "replace", AddrR1 + "/24", "dev", "r1"},
			{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		}
	} else {
		cmds = [][]string{
			{"ip", "addr", "flush", "dev", "r0"},
			{"ip", "addr", "flush", "dev", "r1"},
			{"sysctl", "-q", "-w", "net.ipv4.ip_forward=0"},
		}
	}
	for _, c := range cmds {
		if _, err := r.R.Run(ctx, c...); err != nil {
			return err
		}
	}
	for _, h := range []*Netns{r.A, r.B} {
		if _, err := h.Run(ctx, "ip", "neigh", "flush", "dev", "eth0"); err != nil {
			return err
		}
	}
	r.kernel = on
	return nil
}

// SetMTU sets the MTU of B's link on both ends (R's r1 and B's eth0), the
// setup for path-MTU tests.
func (r *Rig) SetMTU(mtu int) error {
	ctx := context.Background()
	m := fmt.Sprint(mtu)
	if _, err := r.R.Run(ctx, "ip", "link", "set", "r1", "mtu", m); err != nil {
		return err
	}
	_, err := r.B.Run(ctx, "ip", "link", "set", "eth0", "mtu", m)
	return err
}

// MAC returns the hardware address of dev in ns.
func (n *Netns) MAC(dev string) (net.HardwareAddr, error) {
	out, err := n.Run(context.Background(), "cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		return nil, err
	}
	return net.ParseMAC(strings.TrimSpace(string(out)))
}
