package main_test

// IPv6 through ferryd: hosts A and B configure themselves from ferry's
// router advertisements (no static IPv6 config at all), then ping6,
// traceroute -6, unreachable, path MTU discovery and iperf3 -6.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/internal/lab"
)

// autoconf waits (up to 20 s) until h has a global address in prefix and
// a default route via a link-local router, both from ferry's RAs, and
// returns the address and the router.
func autoconf(t *testing.T, h *lab.Netns, prefix string) (addr, router string) {
	t.Helper()
	pf := netip.MustParsePrefix(prefix)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := run(t, h, 5*time.Second, "ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global", "-tentative")
		var ifs []struct {
			AddrInfo []struct {
				Local string `json:"local"`
			} `json:"addr_info"`
		}
		json.Unmarshal([]byte(out), &ifs)
		addr = ""
		for _, i := range ifs {
			for _, a := range i.AddrInfo {
				if x, err := netip.ParseAddr(a.Local); err == nil && pf.Contains(x) {
					addr = a.Local
				}
			}
		}
		rt, _ := run(t, h, 5*time.Second, "ip", "-6", "route", "show", "default")
		if f := strings.Fields(rt); addr != "" && len(f) >= 3 && f[1] == "via" && strings.HasPrefix(f[2], "fe80:") && strings.Contains(rt, "proto ra") {
			return addr, f[2]
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := run(t, h, 5*time.Second, "ip", "-6", "addr")
	rt, _ := run(t, h, 5*time.Second, "ip", "-6", "route")
	t.Fatalf("%s: no address in %s and default route from router advertisements after 20 s:\n%s\n%s", h.Name, prefix, out, rt)
	return "", ""
}

// eui64 is the link-local address ferry derives from a port's MAC.
func eui64(mac net.HardwareAddr) string {
	a := [16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]}
	return netip.AddrFrom16(a).String()
}

// ipv6Rig is ferryRig with IPv6 on ferry's ports and on the hosts, whose
// own IPv6 is left to autoconfiguration.
func ipv6Rig(t *testing.T, cfg lab.FerryConfig, setup func(*lab.Rig)) (*lab.Rig, *lab.Ferryd) {
	t.Helper()
	needTools(t, "rdisc6")
	cfg.IPv6 = true
	return ferryRig(t, cfg, func(r *lab.Rig) {
		for _, h := range []*lab.Netns{r.A, r.B} {
			for _, s := range []string{"net.ipv6.conf.eth0.disable_ipv6=0", "net.ipv6.conf.eth0.accept_ra=1", "net.ipv6.conf.eth0.forwarding=0"} {
				if out, err := run(t, h, 5*time.Second, "sysctl", "-q", "-w", s); err != nil {
					t.Fatalf("%s: %v\n%s", s, err, out)
				}
			}
		}
		if setup != nil {
			setup(r)
		}
	})
}

func checkPing6(t *testing.T, from *lab.Netns, dst string) {
	t.Helper()
	out, err := run(t, from, 30*time.Second, "ping", "-6", "-c", "20", "-i", "0.05", "-W", "1", dst)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping -6 %s from %s: want 0%% loss (err %v):\n%s", dst, from.Name, err, out)
	}
}

func TestFerrydIPv6(t *testing.T) {
	r, f := ipv6Rig(t, lab.FerryConfig{RA0: `rdnss = ["2001:db8:1::53"]` + "\nmtu = 1500"}, nil)
	addrA, routerA := autoconf(t, r.A, lab.NetAv6)
	addrB, _ := autoconf(t, r.B, lab.NetBv6)
	mac0, err := r.R.MAC("r0")
	if err != nil {
		t.Fatal(err)
	}
	ll0 := eui64(mac0)
	t.Logf("A %s, B %s, A's router %s", addrA, addrB, routerA)
	if routerA != ll0 {
		t.Errorf("A's default router is %s, want ferry's link-local %s", routerA, ll0)
	}

	t.Run("rdisc6", func(t *testing.T) {
		out, err := run(t, r.A, 20*time.Second, "rdisc6", "-1", "-w", "3000", "eth0")
		if err != nil {
			t.Fatalf("rdisc6: %v\n%s", err, out)
		}
		for _, want := range []string{"Prefix", "2001:db8:1::/64", "Recursive DNS server", "2001:db8:1::53", "MTU", "1500", "from " + ll0} {
			if !strings.Contains(out, want) {
				t.Errorf("rdisc6 output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("rdisc6:\n%s", out)
	})
	t.Run("ping6 A to B", func(t *testing.T) { checkPing6(t, r.A, addrB) })
	t.Run("ping6 B to A", func(t *testing.T) { checkPing6(t, r.B, addrA) })
	t.Run("ping6 ferry", func(t *testing.T) {
		checkPing6(t, r.A, lab.AddrR0v6)
		checkPing6(t, r.A, lab.AddrR1v6)
		checkPing6(t, r.A, ll0+"%eth0")
	})
	t.Run("traceroute6", func(t *testing.T) { checkTraceroute6(t, r.A, lab.AddrR0v6, addrB) })
	t.Run("no route", func(t *testing.T) { checkNoRoute6(t, r.A, lab.AddrR0v6) })
	t.Run("iperf3 -6", func(t *testing.T) { checkIperf6(t, r, addrB) })
	t.Run("bad input", func(t *testing.T) { checkBadInput6(t, r, f, addrA, addrB) })
	t.Run("ferryctl", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := f.Ctl(ctx, "show", "interfaces")
		if err != nil || !strings.Contains(string(out), lab.AddrR0v6+"/64") || !strings.Contains(string(out), ll0+"/64") {
			t.Errorf("show interfaces lacks ferry's IPv6 addresses (%v):\n%s", err, out)
		}
		out, err = f.Ctl(ctx, "show", "neighbors")
		if err != nil || !strings.Contains(string(out), addrA) || !strings.Contains(string(out), addrB) {
			t.Errorf("show neighbors lacks A's and B's IPv6 addresses (%v):\n%s", err, out)
		}
		t.Logf("ferryctl show neighbors:\n%s", out)
		out, err = f.Ctl(ctx, "route", "get", addrB)
		if err != nil || !strings.Contains(string(out), lab.NetBv6) {
			t.Errorf("route get %s (%v):\n%s", addrB, err, out)
		}
		t.Logf("ferryctl route get %s:\n%s", addrB, out)
		out, _ = f.Ctl(ctx, "show", "interfaces")
		t.Logf("ferryctl show interfaces:\n%s", out)
	})
	stopFerry(t, f)
}

// With MTU 1300 on B's link, ferry answers larger packets with Packet Too
// Big (it never fragments IPv6) and tracepath -6 finds the path MTU.
func TestFerrydIPv6PMTU(t *testing.T) {
	r, f := ipv6Rig(t, lab.FerryConfig{MTU1: 1300}, func(r *lab.Rig) {
		if err := r.SetMTU(1300); err != nil {
			t.Fatal(err)
		}
	})
	autoconf(t, r.A, lab.NetAv6)
	addrB, _ := autoconf(t, r.B, lab.NetBv6)
	checkPMTU6(t, r.A, lab.AddrR0v6, addrB)
	stopFerry(t, f)
}

// checkBadInput6 sends malformed IPv6 frames from A with a raw socket and
// expects each counted under its reason, with ferry still forwarding.
func checkBadInput6(t *testing.T, r *lab.Rig, f *lab.Ferryd, addrA, addrB string) {
	srcMAC, err := r.A.MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	dstMAC, err := r.R.MAC("r0")
	if err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddr(addrA).As16(), netip.MustParseAddr(addrB).As16()
	// frame builds Ethernet + IPv6 (A to dst, next header nh, hop limit
	// hl) + payload; mod edits the whole frame last.
	frame := func(to [16]byte, nh, hl byte, payload []byte, mod func(b []byte)) []byte {
		b := make([]byte, 14+40+len(payload))
		copy(b[0:6], dstMAC)
		copy(b[6:12], srcMAC)
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip := header.IPv6(b[14:])
		ip.Encode(&header.IPv6Fields{PayloadLength: uint16(len(payload)), HopLimit: hl})
		ip[6] = nh
		copy(ip.SourceAddressSlice(), src[:])
		copy(ip.DestinationAddressSlice(), to[:])
		copy(ip[40:], payload)
		if nh == 58 {
			m := header.ICMPv6(ip[40:])
			m.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: m,
				Src: tcpip.AddrFrom16(src), Dst: tcpip.AddrFrom16(to)}))
		}
		if mod != nil {
			mod(b)
		}
		return b
	}
	udp := make([]byte, 16)
	ns := make([]byte, 24) // NS for ferry's address
	ns[0] = 135
	r0 := netip.MustParseAddr(lab.AddrR0v6).As16()
	copy(ns[8:], r0[:])
	destOpts := func(n int) []byte { // n empty destination-options headers, then UDP
		b := make([]byte, 8*n+8)
		for i := 0; i < n; i++ {
			b[8*i] = 60
		}
		b[8*(n-1)] = 17
		return b
	}
	frames := map[string][]byte{
		"ip6_truncated":             frame(dst, 17, 64, udp, func(b []byte) { b[14+5] = 200 }),
		"ip6_bad_version":           frame(dst, 17, 64, udp, func(b []byte) { b[14] = 0x40 }),
		"nd_invalid":                frame(r0, 58, 64, ns, nil), // hop limit 64, not 255
		"ip6_bad_extension_headers": frame(dst, 60, 64, destOpts(9), nil),
	}
	err = r.A.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], dstMAC)
		for i := 0; i < 3; i++ {
			for _, fr := range frames {
				if err := unix.Sendto(fd, fr, 0, sa); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw sender: %v", err)
	}
	checkPing6(t, r.A, addrB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := f.Ctl(ctx, "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	for reason := range frames {
		if n := dropCount(string(out), reason); n < 3 {
			t.Errorf("show interfaces: drop reason %s counted %d times, want 3:\n%s", reason, n, out)
		}
	}
}

// --- checks shared by ferryd's tests and the kernel baseline ---

func checkTraceroute6(t *testing.T, from *lab.Netns, router, dst string) {
	t.Helper()
	out, err := run(t, from, 60*time.Second, "traceroute", "-6", "-n", "-q1", "-w1", "-N1", dst)
	if err != nil {
		t.Fatalf("traceroute -6: %v\n%s", err, out)
	}
	hops := map[int]string{}
	for _, m := range hopRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		hops[n] = m[2]
	}
	if hops[1] != router || hops[2] != dst || len(hops) != 2 {
		t.Errorf("traceroute -6: want hop 1 %s and hop 2 %s, got %v:\n%s", router, dst, hops, out)
	}
}

func checkNoRoute6(t *testing.T, from *lab.Netns, router string) {
	t.Helper()
	out, err := run(t, from, 30*time.Second, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", lab.UnroutedV6)
	want := "From " + router + " icmp_seq=1 Destination unreachable: No route"
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("ping -6 %s: want %q (err %v):\n%s", lab.UnroutedV6, want, err, out)
	}
}

// checkIperf6 runs iperf3 -6 TCP from A to B and back (3 s each) and
// wants more than 1 Gbit/s, the floor checkTCP explains.
func checkIperf6(t *testing.T, r *lab.Rig, addrB string) {
	t.Helper()
	p := r.B.MustStart("iperf3", "-s", "-B", addrB)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, _ := run(t, r.B, 5*time.Second, "ss", "-Hltn", "sport = :5201"); strings.Contains(out, "5201") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, reverse := range []bool{false, true} {
		args := []string{"iperf3", "-6", "-c", addrB, "-J", "-t", "3"}
		if reverse {
			args = append(args, "-R")
		}
		out, err := run(t, r.A, 60*time.Second, args...)
		var res iperfResult
		if jerr := json.Unmarshal([]byte(out), &res); err != nil || jerr != nil || res.Error != "" {
			t.Errorf("%s: %v %v %s\n%s", strings.Join(args, " "), err, jerr, res.Error, p.Output())
			continue
		}
		bps := res.End.SumReceived.BitsPerSec
		t.Logf("iperf3 -6 TCP reverse=%v: %.2f Gbit/s", reverse, bps/1e9)
		if bps <= 1e9 {
			t.Errorf("iperf3 -6 TCP reverse=%v: %.3f Gbit/s, want > 1 Gbit/s", reverse, bps/1e9)
		}
	}
}

// checkPMTU6 expects B's link to have MTU 1300: a large ping gets Packet
// Too Big from the router, and tracepath -6 finds the path MTU.
func checkPMTU6(t *testing.T, from *lab.Netns, router, dst string) {
	t.Helper()
	ptbRE := regexp.MustCompile(`From ` + regexp.QuoteMeta(router) + ` icmp_seq=\d+ Packet too big: mtu=1300|message too long, mtu[=:] ?1300`)
	out, err := run(t, from, 30*time.Second, "ping", "-6", "-M", "do", "-s", "1400", "-c", "3", "-i", "0.2", "-W", "1", dst)
	if err == nil || !ptbRE.MatchString(out) {
		t.Errorf("ping -6 -s 1400: want Packet too big with mtu 1300 (err %v):\n%s", err, out)
	}
	if out, err := run(t, from, 10*time.Second, "ip", "-6", "route", "flush", "cache"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = run(t, from, 60*time.Second, "tracepath", "-6", "-n", dst)
	if err != nil || !strings.Contains(out, "pmtu 1300") || !strings.Contains(out, "Resume: pmtu 1300") {
		t.Errorf("tracepath -6: want pmtu 1300 (err %v):\n%s", err, out)
	}
	t.Logf("tracepath -6:\n%s", out)
	out, err = run(t, from, 30*time.Second, "ping", "-6", "-M", "do", "-s", "1252", "-c", "3", "-i", "0.2", "-W", "1", dst)
	if err != nil {
		t.Errorf("ping -6 -s 1252 (exactly 1300 bytes): %v\n%s", err, out)
	}
}

// TestKernelBaselineIPv6 runs the IPv6 checks against Linux forwarding in
// R, with the same addresses statically configured (Linux sends no router
// advertisements by itself), to show the checks are sound.
func TestKernelBaselineIPv6(t *testing.T) {
	l := lab.NewT(t)
	needTools(t, "ping", "traceroute", "tracepath", "iperf3")
	r := lab.MustRig(l, true)
	const addrA, addrB = "2001:db8:1::2", "2001:db8:2::2"
	steps := []struct {
		ns   *lab.Netns
		args []string
	}{
		{r.R, []string{"sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
			"net.ipv6.conf.r0.disable_ipv6=0", "net.ipv6.conf.r1.disable_ipv6=0", "net.ipv6.conf.all.forwarding=1"}},
		{r.R, []string{"ip", "-6", "addr", "add", lab.AddrR0v6 + "/64", "dev", "r0", "nodad"}},
		{r.R, []string{"ip", "-6", "addr", "add", lab.AddrR1v6 + "/64", "dev", "r1", "nodad"}},
		{r.A, []string{"ip", "-6", "addr", "add", addrA + "/64", "dev", "eth0", "nodad"}},
		{r.A, []string{"ip", "-6", "route", "replace", "default", "via", lab.AddrR0v6}},
		{r.B, []string{"ip", "-6", "addr", "add", addrB + "/64", "dev", "eth0", "nodad"}},
		{r.B, []string{"ip", "-6", "route", "replace", "default", "via", lab.AddrR1v6}},
	}
	for _, st := range steps {
		if out, err := run(t, st.ns, 10*time.Second, st.args...); err != nil {
			t.Fatalf("%v: %v\n%s", st.args, err, out)
		}
	}
	t.Run("ping6", func(t *testing.T) {
		checkPing6(t, r.A, addrB)
		checkPing6(t, r.B, addrA)
	})
	t.Run("traceroute6", func(t *testing.T) { checkTraceroute6(t, r.A, lab.AddrR0v6, addrB) })
	t.Run("no route", func(t *testing.T) { checkNoRoute6(t, r.A, lab.AddrR0v6) })
	t.Run("iperf3 -6", func(t *testing.T) { checkIperf6(t, r, addrB) })
	t.Run("pmtu", func(t *testing.T) {
		if err := r.SetMTU(1300); err != nil {
			t.Fatal(err)
		}
		checkPMTU6(t, r.A, lab.AddrR0v6, addrB)
	})
}
