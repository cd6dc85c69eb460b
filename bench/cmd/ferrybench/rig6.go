package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

// The kernel rig's IPv6 addresses, in the documentation prefix:
//
//	A eth0 2001:db8:1::2/64 ── r0 [R] r1 ── eth0 2001:db8:2::2/64 B
//	               2001:db8:1::1    2001:db8:2::1
//
// The generator sends from genSrc6 to bench.SinkAddr6, in B's prefix but
// not B's own address.
const (
	addr6A  = genSrc6
	addr6R0 = "2001:db8:1::1"
	addr6R1 = "2001:db8:2::1"
	addr6B  = "2001:db8:2::2"
)

// enableIPv6 makes the kernel rig forward IPv6 too. lab.NewRig turns IPv6
// off in R, which keeps R's kernel quiet for ferryd (it has no IPv6 yet);
// the kernel contender's R is an ordinary router, so it gets IPv6 back.
// Duplicate address detection is off before any address exists, so no
// address is tentative (a tentative address neither forwards nor answers)
// and no DAD probe crosses the links once the trials run. The hosts send
// no router solicitations: nothing on the rig advertises routes, and the
// sink's counters should see the generator's packets and little else.
func enableIPv6(rig *lab.Rig, sinkMAC string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	steps := []struct {
		ns   *lab.Netns
		args []string
	}{
		{rig.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.r0.accept_dad=0", "net.ipv6.conf.r1.accept_dad=0"}},
		{rig.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
			"net.ipv6.conf.r0.disable_ipv6=0", "net.ipv6.conf.r1.disable_ipv6=0"}},
		{rig.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"}},
		{rig.R, []string{"ip", "-6", "addr", "replace", addr6R0 + "/64", "dev", "r0", "nodad"}},
		{rig.R, []string{"ip", "-6", "addr", "replace", addr6R1 + "/64", "dev", "r1", "nodad"}},
		{rig.R, []string{"ip", "-6", "neigh", "replace", bench.SinkAddr6, "lladdr", sinkMAC, "dev", "r1", "nud", "permanent"}},
	}
	for _, h := range []struct {
		ns        *lab.Netns
		addr, via string
	}{{rig.A, addr6A, addr6R0}, {rig.B, addr6B, addr6R1}} {
		steps = append(steps, []struct {
			ns   *lab.Netns
			args []string
		}{
			{h.ns, []string{"sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0", "net.ipv6.conf.eth0.router_solicitations=0"}},
			{h.ns, []string{"ip", "-6", "addr", "replace", h.addr + "/64", "dev", "eth0", "nodad"}},
			{h.ns, []string{"ip", "-6", "route", "replace", "default", "via", h.via}},
		}...)
	}
	for _, s := range steps {
		if _, err := s.ns.Run(ctx, s.args...); err != nil {
			return err
		}
	}
	// A round trip proves R forwards IPv6 both ways and settles the
	// neighbour entries before any trial counts packets.
	if out, err := rig.A.Run(ctx, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", addr6B); err != nil {
		return fmt.Errorf("IPv6 through the kernel rig: %v: %s", err, out)
	}
	return nil
}
