package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/dataplane"
	"github.com/ferry-router/ferry/internal/lab"
)

// The rigs' IPv6 addresses, in the documentation prefix, the same on
// every rig: R's are the kernel's addresses on the kernel's rig and
// ferryd's (lab.FerryConfig.IPv6) on the others.
//
//	A eth0 2001:db8:1::2/64 ── r0 [R] r1 ── eth0 2001:db8:2::2/64 B
//	               2001:db8:1::1    2001:db8:2::1
//
// The generator sends from genSrc6 to bench.SinkAddr6, in B's prefix but
// not B's own address.
const (
	addr6A  = genSrc6
	addr6R0 = lab.AddrR0v6
	addr6R1 = lab.AddrR1v6
	addr6B  = "2001:db8:2::2"
)

// enableIPv6 makes the kernel rig forward IPv6 too. lab.NewRig turns IPv6
// off in R, which leaves R's links to ferryd on its rigs; the kernel
// contender's R is an ordinary router, so it gets IPv6 back. Duplicate
// address detection is off before any address exists, so no address is
// tentative (a tentative address neither forwards nor answers) and no DAD
// probe crosses the links once the trials run.
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
	for _, s := range steps {
		if _, err := s.ns.Run(ctx, s.args...); err != nil {
			return err
		}
	}
	if err := hostsIPv6(ctx, rig); err != nil {
		return err
	}
	// A round trip proves R forwards IPv6 both ways and settles the
	// neighbour entries before any trial counts packets.
	if out, err := rig.A.Run(ctx, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", addr6B); err != nil {
		return fmt.Errorf("IPv6 through the kernel rig: %v: %s", err, out)
	}
	return nil
}

// hostsIPv6 gives A and B their static IPv6 addresses and default routes
// via R's, on every rig. Their addresses are nodad, and the hosts send no
// router solicitations: nothing on the rig advertises routes (ferryd runs
// with lab.FerryConfig.NoRA), and the sink's counters should see the
// generator's packets and little else.
func hostsIPv6(ctx context.Context, rig *lab.Rig) error {
	for _, h := range []struct {
		ns        *lab.Netns
		addr, via string
	}{{rig.A, addr6A, addr6R0}, {rig.B, addr6B, addr6R1}} {
		for _, args := range [][]string{
			{"sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.eth0.accept_dad=0", "net.ipv6.conf.eth0.router_solicitations=0"},
			{"ip", "-6", "addr", "replace", h.addr + "/64", "dev", "eth0", "nodad"},
			{"ip", "-6", "route", "replace", "default", "via", h.via},
		} {
			if _, err := h.ns.Run(ctx, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitDAD waits (up to 5 s) until ferryd's duplicate address detection is
// over: its IPv6 addresses stay tentative for its first second, and a
// tentative address answers no neighbour solicitation. An address that
// another node defended (dadfailed) is a broken rig, not a figure.
func waitDAD(ctx context.Context, f *lab.Ferryd) error {
	deadline := time.Now().Add(5 * time.Second)
	var last []string
	for {
		out, err := f.Ctl(ctx, "-j", "show", "interfaces")
		if err != nil {
			return err
		}
		var ps []dataplane.InterfaceStatus
		if err := json.Unmarshal(out, &ps); err != nil {
			return fmt.Errorf("ferryctl show interfaces: %v", err)
		}
		tentative := false
		last = last[:0]
		for _, p := range ps {
			for _, a := range p.Addresses {
				last = append(last, p.Name+" "+a)
				if strings.HasSuffix(a, " dadfailed") {
					return fmt.Errorf("ferryd gave up %s on %s: another node defended it", strings.TrimSuffix(a, " dadfailed"), p.Name)
				}
				tentative = tentative || strings.HasSuffix(a, " tentative")
			}
		}
		if !tentative {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ferryd's IPv6 addresses still tentative after 5 s: %s", strings.Join(last, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
