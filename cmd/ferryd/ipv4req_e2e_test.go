package main_test

// End-to-end checks of the IPv4 router requirements (issue 16) with real
// clients: ping -R and -T, large pings to ferry, traceroute to ferry's far
// address, nmap and hping3 against its closed ports, a directed broadcast
// watched by tcpdump, an ICMP redirect to a host on a rig with a second
// router on A's link, rp_filter against a spoofed source, and a fragment
// flood. Where the issue compares with Linux, the same check runs against
// the kernel router in R too.

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

// kernelRig is the A—R—B rig with Linux forwarding in R.
func kernelRig(t *testing.T) *lab.Rig {
	t.Helper()
	l := lab.NewT(t)
	return lab.MustRig(l, true)
}

// --- checks run against both routers ---

// checkRecordRoute: ping -R to B lists R's address on each side, the
// egress one each way: 198.51.100.1 out, 192.0.2.1 back. (B records its
// own address twice: as the request arrives and as the reply leaves.)
func checkRecordRoute(t *testing.T, r *lab.Rig) {
	t.Helper()
	out, err := run(t, r.A, 20*time.Second, "ping", "-R", "-c", "2", "-i", "0.2", "-W", "2", lab.AddrB)
	if err != nil {
		t.Fatalf("ping -R: %v\n%s", err, out)
	}
	i := strings.Index(out, "RR:")
	if i < 0 {
		t.Fatalf("ping -R shows no route:\n%s", out)
	}
	rr := strings.Fields(out[i+3:])
	want := []string{lab.AddrA, lab.AddrR1, lab.AddrB, lab.AddrB, lab.AddrR0, lab.AddrA}
	if len(rr) < len(want) || strings.Join(rr[:len(want)], " ") != strings.Join(want, " ") {
		t.Errorf("record route %v, want %v:\n%s", rr[:min(len(rr), 6)], want, out)
	}
	t.Logf("ping -R: RR %v", rr[:len(want)])
}

var tsLineRE = regexp.MustCompile(`(?m)^\s*(?:TS:)?\s*(\d+\.\d+\.\d+\.\d+)\s+(-?\d+)`)

// checkTimestamp: ping -T tsandaddr records R, second after A, with a
// timestamp within a second of A's (ping prints it relative to the one
// before). Linux stamps at input, with the ingress address; ferry stamps
// on the way out with the egress address, as issue 16 asks: the caller
// says which address to expect.
func checkTimestamp(t *testing.T, r *lab.Rig, router string) {
	t.Helper()
	out, err := run(t, r.A, 20*time.Second, "ping", "-T", "tsandaddr", "-c", "1", "-W", "2", lab.AddrB)
	if err != nil {
		t.Fatalf("ping -T tsandaddr: %v\n%s", err, out)
	}
	ts := tsLineRE.FindAllStringSubmatch(out, -1)
	if len(ts) < 2 || ts[0][1] != lab.AddrA || ts[1][1] != router {
		t.Fatalf("want A's timestamp then %s's:\n%s", router, out)
	}
	if d, _ := strconv.Atoi(ts[1][2]); d < -1000 || d > 1000 {
		t.Errorf("%s's timestamp is %d ms from A's:\n%s", router, d, out)
	}
	t.Logf("ping -T tsandaddr:\n%s", out)
}

func checkBigPings(t *testing.T, r *lab.Rig) {
	t.Helper()
	for _, size := range []string{"3000", "65000"} {
		out, err := run(t, r.A, 30*time.Second, "ping", "-c", "3", "-i", "0.3", "-W", "3", "-s", size, lab.AddrR0)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("ping -s %s %s: want every reply (err %v):\n%s", size, lab.AddrR0, err, out)
		}
	}
}

// checkTracerouteToFarAddress: traceroute to R's address on B's side ends
// on that address, as RFC 1812 4.3.2.4 asks.
func checkTracerouteToFarAddress(t *testing.T, r *lab.Rig) {
	t.Helper()
	out, err := run(t, r.A, 30*time.Second, "traceroute", "-n", "-q1", "-N1", "-w1", lab.AddrR1)
	if err != nil {
		t.Fatalf("traceroute: %v\n%s", err, out)
	}
	hops := hopRE.FindAllStringSubmatch(out, -1)
	if len(hops) != 1 || hops[0][2] != lab.AddrR1 {
		t.Errorf("traceroute %s: want one hop, %s:\n%s", lab.AddrR1, lab.AddrR1, out)
	}
}

// checkClosedPort: a SYN to port 22 of R gets a reset: nmap says closed,
// hping3 sees RA.
func checkClosedPort(t *testing.T, r *lab.Rig) {
	t.Helper()
	out, err := run(t, r.A, 60*time.Second, "nmap", "-n", "-Pn", "-sS", "-p", "22", lab.AddrR0)
	if err != nil || !regexp.MustCompile(`22/tcp\s+closed`).MatchString(out) {
		t.Errorf("nmap -sS -p 22 %s: want closed (err %v):\n%s", lab.AddrR0, err, out)
	}
	out, _ = run(t, r.A, 20*time.Second, "hping3", "-S", "-p", "22", "-c", "2", lab.AddrR1)
	if !strings.Contains(out, "flags=RA") {
		t.Errorf("hping3 -S -p 22 %s: want a reset:\n%s", lab.AddrR1, out)
	}
}

func TestIPv4RequirementsKernelBaseline(t *testing.T) {
	needTools(t, "ping", "traceroute", "nmap", "hping3")
	r := kernelRig(t)
	t.Run("record route", func(t *testing.T) { checkRecordRoute(t, r) })
	t.Run("timestamp", func(t *testing.T) { checkTimestamp(t, r, lab.AddrR0) })
	t.Run("big pings", func(t *testing.T) { checkBigPings(t, r) })
	t.Run("traceroute far address", func(t *testing.T) { checkTracerouteToFarAddress(t, r) })
	t.Run("closed port", func(t *testing.T) { checkClosedPort(t, r) })
}

func TestFerrydIPv4Requirements(t *testing.T) {
	needTools(t, "nmap", "hping3", "tcpdump")
	r, f := ferryRig(t, lab.FerryConfig{Extra: "rp_filter = 1 # r1: B's port"}, nil)
	t.Run("record route", func(t *testing.T) { checkRecordRoute(t, r) })
	t.Run("timestamp", func(t *testing.T) { checkTimestamp(t, r, lab.AddrR1) })
	t.Run("big pings", func(t *testing.T) { checkBigPings(t, r) })
	t.Run("traceroute far address", func(t *testing.T) { checkTracerouteToFarAddress(t, r) })
	t.Run("closed port", func(t *testing.T) { checkClosedPort(t, r) })

	t.Run("directed broadcast", func(t *testing.T) {
		// tcpdump on B's link: neither the broadcast nor an ARP for it.
		td := r.B.MustStart("tcpdump", "-l", "-n", "-i", "eth0", "arp or dst host 198.51.100.255")
		time.Sleep(time.Second)
		before := dropCount(ctl(t, f, "show", "interfaces"), "directed_broadcast")
		run(t, r.A, 10*time.Second, "ping", "-b", "-c", "3", "-i", "0.2", "-W", "1", "198.51.100.255")
		time.Sleep(500 * time.Millisecond)
		td.Stop(syscall.SIGINT, 5*time.Second)
		if strings.Contains(td.Output(), "198.51.100.255") {
			t.Errorf("tcpdump on B saw the broadcast or an ARP for it:\n%s", td.Output())
		}
		if n := dropCount(ctl(t, f, "show", "interfaces"), "directed_broadcast") - before; n != 3 {
			t.Errorf("directed_broadcast counted %d, want 3", n)
		}
		t.Logf("tcpdump on B:\n%s", td.Output())
	})

	t.Run("rp_filter strict", func(t *testing.T) {
		// From B's port with a source on A's network: spoofed.
		before := dropCount(ctl(t, f, "show", "interfaces"), "rp_filter")
		run(t, r.B, 20*time.Second, "hping3", "--udp", "-p", "9", "-a", "192.0.2.77", "-c", "5", "-i", "u100000", lab.AddrA)
		if n := dropCount(ctl(t, f, "show", "interfaces"), "rp_filter") - before; n != 5 {
			t.Errorf("rp_filter counted %d, want 5", n)
		}
		checkPing(t, r.B, lab.AddrA) // genuine traffic from B still passes
	})

	t.Run("fragment flood", func(t *testing.T) {
		// hping3 -x: every datagram's first fragment with more to come,
		// never completed, each with its own id: reassembly fills up.
		flood := r.B.MustStart("hping3", "--udp", "-p", "9", "-x", "-d", "1000", "-i", "u500", "-c", "6000", lab.AddrR1)
		defer flood.Stop(syscall.SIGINT, 5*time.Second)
		checkPing(t, r.A, lab.AddrB)
		st := ctl(t, f, "show", "stats")
		t.Logf("during the flood:\n%s", st)
		total := 0
		for _, m := range regexp.MustCompile(`reassembly\s+(\d+) datagrams\s+(\d+) bytes\s+of (\d+)`).FindAllStringSubmatch(st, -1) {
			held, _ := strconv.Atoi(m[2])
			limit, _ := strconv.Atoi(m[3])
			if held > limit {
				t.Errorf("worker holds %d bytes of fragments, over its %d", held, limit)
			}
			total += limit
		}
		if total == 0 || total > 4<<20 {
			t.Errorf("reassembly limits add up to %d bytes, want 4 MiB at most", total)
		}
		if dropCount(ctl(t, f, "show", "interfaces"), "reassembly_no_memory") == 0 {
			t.Error("the flood never met the memory bound")
		}
	})
	stopFerry(t, f)
}

// TestFerrydRedirect builds its own rig: A, a second router G and ferry
// share A's link (a bridge in namespace S); G owns 203.0.113.5, and ferry
// routes 203.0.113.0/24 via G. A sends to 203.0.113.5 through ferry, which
// sends the packets back out of r0: A must get a host redirect, and its
// pings must all be answered.
//
//	A eth0 192.0.2.2 ─┐
//	G eth0 192.0.2.3 ─┤ S (br0) ── r0 [R: ferryd] r1 ── B
//	  lo 203.0.113.5  │
func TestFerrydRedirect(t *testing.T) {
	needTools(t, "ping", "tcpdump")
	l := lab.NewT(t)
	ferryd, ferryctl := binaries(t)
	ns := func(s string) *lab.Netns { return l.MustNetns(s) }
	a, g, s, rr, b := ns("a"), ns("g"), ns("s"), ns("r"), ns("b")
	for _, v := range [][4]any{{a, "eth0", s, "pa"}, {g, "eth0", s, "pg"}, {rr, "r0", s, "pr"}, {b, "eth0", rr, "r1"}} {
		if err := l.Veth(v[0].(*lab.Netns), v[1].(string), v[2].(*lab.Netns), v[3].(string)); err != nil {
			t.Fatal(err)
		}
	}
	s.MustRun("ip", "link", "add", "br0", "type", "bridge")
	for _, p := range []string{"pa", "pg", "pr"} {
		s.MustRun("ip", "link", "set", p, "master", "br0")
	}
	s.MustRun("ip", "link", "set", "br0", "up")
	a.MustRun("ip", "addr", "add", lab.AddrA+"/24", "dev", "eth0")
	a.MustRun("ip", "route", "add", "default", "via", lab.AddrR0)
	g.MustRun("ip", "addr", "add", "192.0.2.3/24", "dev", "eth0")
	g.MustRun("ip", "addr", "add", "203.0.113.5/32", "dev", "lo")
	b.MustRun("ip", "addr", "add", lab.AddrB+"/24", "dev", "eth0")
	b.MustRun("ip", "route", "add", "default", "via", lab.AddrR1)
	rr.MustRun("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	rig := &lab.Rig{Lab: l, A: a, R: rr, B: b}
	f, err := rig.StartFerryd(ferryd, ferryctl, t.TempDir(), lab.FerryConfig{Workers: 2,
		Extra: "[[route]]\nprefix = \"203.0.113.0/24\"\nvia = \"192.0.2.3\""})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("ferryd log:\n%s", f.Output())
		}
	}()
	out := ctl(t, f, "show", "interfaces")
	if !strings.Contains(out, "send_redirects 1") {
		t.Errorf("send_redirects is not on by default:\n%s", out)
	}
	td := a.MustStart("tcpdump", "-l", "-n", "-v", "-i", "eth0", "icmp[icmptype] == 5")
	time.Sleep(time.Second)
	out, err = run(t, a, 30*time.Second, "ping", "-c", "10", "-i", "0.2", "-W", "1", "203.0.113.5")
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping 203.0.113.5 via ferry and G: want every reply (err %v):\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	td.Stop(syscall.SIGINT, 5*time.Second)
	dump := td.Output()
	t.Logf("tcpdump on A:\n%s", dump)
	if !regexp.MustCompile(`192\.0\.2\.1 > 192\.0\.2\.2: ICMP redirect 203\.0\.113\.5 to host 192\.0\.2\.3`).MatchString(dump) {
		t.Errorf("no host redirect from ferry to G seen on A")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rc, _ := a.Run(ctx, "ip", "route", "get", "203.0.113.5"); !strings.Contains(string(rc), "via 192.0.2.3") {
		t.Logf("A's route cache after the redirect: %s", rc)
	}
	stopFerry(t, f)
}
