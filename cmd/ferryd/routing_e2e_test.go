package main_test

// End-to-end tests for the FIB issue: policy routing over two uplinks,
// ECMP, blackhole/unreachable/prohibit routes and route changes under load.
//
//	A 192.0.2.2 + .3 ── r0 [ferryd] r1 198.51.100.1/24 ── eth0 198.51.100.2 [B]
//	                             r2 203.0.113.1/25  ── eth1 203.0.113.2
//
// B holds the "far" addresses 203.0.113.200 and .201 on its loopback, so
// either uplink reaches them; counters on B's eth0 and eth1 tell which link
// traffic took. B answers by eth0 whatever link a packet came in on, so its
// reverse-path filter is off.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-router/ferry/internal/lab"
)

const (
	far1  = "203.0.113.200"
	far2  = "203.0.113.201"
	srcA2 = "192.0.2.3"
	gw1   = "198.51.100.2" // B's eth0
	gw2   = "203.0.113.2"  // B's eth1
)

// uplinkRig builds the two-uplink rig and starts ferryd with extra config
// (routes, tables, rules) after the third interface.
func uplinkRig(t *testing.T, extra string) (*lab.Rig, *lab.Ferryd) {
	t.Helper()
	cfg := lab.FerryConfig{Extra: "[[interface]]\nname = \"r2\"\nkind = \"afpacket\"\naddresses = [\"203.0.113.1/25\"]\n\n" + extra}
	return ferryRig(t, cfg, func(r *lab.Rig) {
		if err := r.Lab.Veth(r.R, "r2", r.B, "eth1"); err != nil {
			t.Fatal(err)
		}
		r.A.MustRun("ip", "addr", "add", srcA2+"/24", "dev", "eth0")
		r.B.MustRun("ip", "addr", "add", gw2+"/25", "dev", "eth1")
		r.B.MustRun("ip", "addr", "add", far1+"/32", "dev", "lo")
		r.B.MustRun("ip", "addr", "add", far2+"/32", "dev", "lo")
		for _, k := range []string{"all", "default", "eth0", "eth1"} {
			if err := r.B.Sysctl("net.ipv4.conf."+k+".rp_filter", "0"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// rx is B's received packet and byte counters on dev.
func rx(t *testing.T, r *lab.Rig, dev string) (pkts, bytes uint64) {
	t.Helper()
	for i, what := range []string{"rx_packets", "rx_bytes"} {
		out, err := run(t, r.B, 5*time.Second, "cat", "/sys/class/net/"+dev+"/statistics/"+what)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pkts = v
		} else {
			bytes = v
		}
	}
	return
}

// pingVia pings dst from src 20 times and returns how many packets B
// received on eth0 and on eth1 meanwhile.
func pingVia(t *testing.T, r *lab.Rig, src, dst string) (eth0, eth1 uint64) {
	t.Helper()
	a0, _ := rx(t, r, "eth0")
	a1, _ := rx(t, r, "eth1")
	out, err := run(t, r.A, 30*time.Second, "ping", "-c", "20", "-i", "0.02", "-W", "1", "-I", src, dst)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping -I %s %s: want 0%% loss (err %v):\n%s", src, dst, err, out)
	}
	b0, _ := rx(t, r, "eth0")
	b1, _ := rx(t, r, "eth1")
	return b0 - a0, b1 - a1
}

func ctl(t *testing.T, f *lab.Ferryd, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := f.Ctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestFerrydPolicyRouting(t *testing.T) {
	r, f := uplinkRig(t, fmt.Sprintf(`
[[table]]
id = 100
name = "uplink2"

[[route]]
prefix = "203.0.113.128/25"
via = %q

[[route]]
prefix = "0.0.0.0/0"
via = %q
table = "uplink2"

[[rule]]
priority = 100
from = "%s/32"
table = "uplink2"
`, gw1, gw2, srcA2))
	// Traffic from each source leaves by its own uplink.
	e0, e1 := pingVia(t, r, lab.AddrA, far1)
	if e0 < 20 || e1 > 2 {
		t.Errorf("from %s: B got %d on eth0, %d on eth1; want all on eth0", lab.AddrA, e0, e1)
	}
	e0, e1 = pingVia(t, r, srcA2, far1)
	if e1 < 20 || e0 > 2 {
		t.Errorf("from %s: B got %d on eth0, %d on eth1; want all on eth1", srcA2, e0, e1)
	}
	// ferry's own address is still local for the policy-routed source.
	checkPingFrom(t, r.A, srcA2, lab.AddrR0)

	rules := ctl(t, f, "show", "rules")
	for _, want := range []string{"0:\tfrom all lookup local", "100:\tfrom 192.0.2.3/32 lookup uplink2", "32766:\tfrom all lookup main"} {
		if !strings.Contains(rules, want) {
			t.Errorf("show rules lacks %q:\n%s", want, rules)
		}
	}
	get := ctl(t, f, "route", "get", far1, "from", srcA2, "iif", "r0")
	for _, want := range []string{far1 + " via " + gw2 + " dev r2 table uplink2 src 203.0.113.1", "rule 100: from 192.0.2.3/32 lookup uplink2", "route 0.0.0.0/0 via " + gw2 + " dev r2"} {
		if !strings.Contains(get, want) {
			t.Errorf("route get lacks %q:\n%s", want, get)
		}
	}
	if tbl := ctl(t, f, "show", "route", "table", "uplink2"); !strings.Contains(tbl, "0.0.0.0/0 via "+gw2+" dev r2 proto static metric 0") {
		t.Errorf("show route table uplink2:\n%s", tbl)
	}
	// A rule added at run time takes effect for new packets at once.
	ctl(t, f, "rule", "add", "priority", "50", "from", lab.AddrA+"/32", "lookup", "uplink2")
	if e0, e1 := pingVia(t, r, lab.AddrA, far1); e1 < 20 || e0 > 2 {
		t.Errorf("after rule add: B got %d on eth0, %d on eth1; want all on eth1", e0, e1)
	}
	ctl(t, f, "rule", "del", "priority", "50", "from", lab.AddrA+"/32", "lookup", "uplink2")
	if e0, e1 := pingVia(t, r, lab.AddrA, far1); e0 < 20 || e1 > 2 {
		t.Errorf("after rule del: B got %d on eth0, %d on eth1; want all on eth0", e0, e1)
	}
	stopFerry(t, f)
}

func checkPingFrom(t *testing.T, from *lab.Netns, src, dst string) {
	t.Helper()
	out, err := run(t, from, 30*time.Second, "ping", "-c", "5", "-i", "0.05", "-W", "1", "-I", src, dst)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping -I %s %s: want 0%% loss (err %v):\n%s", src, dst, err, out)
	}
}

// udpSink listens on addr:port in ns and records, for every datagram, the
// sender's port and the interface it arrived on (IP_PKTINFO).
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seen map[int]map[int]int // source port -> ifindex -> packets
	done chan struct{}
}

func startUDPSink(t *testing.T, ns *lab.Netns, addr string, port int) *udpSink {
	t.Helper()
	s := &udpSink{seen: map[int]map[int]int{}, done: make(chan struct{})}
	err := ns.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr), Port: port})
		if err != nil {
			return err
		}
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1) })
		s.conn = c
		return serr
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		oob := make([]byte, 256)
		for {
			_, oobn, _, from, err := s.conn.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 4 {
					ifx := int(binary.NativeEndian.Uint32(m.Data[0:4]))
					s.mu.Lock()
					if s.seen[from.Port] == nil {
						s.seen[from.Port] = map[int]int{}
					}
					s.seen[from.Port][ifx]++
					s.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() { s.conn.Close(); <-s.done })
	return s
}

func TestFerrydECMP(t *testing.T) {
	r, f := uplinkRig(t, fmt.Sprintf(`
[[route]]
prefix = "203.0.113.128/25"
nexthop = [{ via = %q }, { via = %q }]
`, gw1, gw2))
	// Resolve both gateways before counting.
	checkPing(t, r.A, far1)
	sink := startUDPSink(t, r.B, far1, 9000)
	const flows, per = 64, 10
	err := r.A.Do(func() error {
		var conns []*net.UDPConn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < flows; i++ {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(lab.AddrA), Port: 30000 + i}, &net.UDPAddr{IP: net.ParseIP(far1), Port: 9000})
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		for k := 0; k < per; k++ {
			for _, c := range conns {
				if _, err := c.Write([]byte("ferry ecmp probe")); err != nil {
					return err
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	perLink := map[int]int{}
	total := 0
	for port, links := range sink.seen {
		if len(links) != 1 {
			t.Errorf("flow from port %d arrived on %d links: %v", port, len(links), links)
		}
		for ifx, n := range links {
			perLink[ifx]++
			total += n
		}
	}
	t.Logf("ECMP: %d flows, %d of %d packets; flows per B ifindex %v", len(sink.seen), total, flows*per, perLink)
	if len(perLink) != 2 {
		t.Errorf("flows used %d links, want both: %v", len(perLink), perLink)
	}
	for ifx, n := range perLink {
		if n < flows/5 {
			t.Errorf("link ifindex %d carried only %d of %d flows", ifx, n, flows)
		}
	}
	if total < flows*per*9/10 {
		t.Errorf("only %d of %d datagrams arrived", total, flows*per)
	}
	if out := ctl(t, f, "show", "routes"); !strings.Contains(out, "nexthop via "+gw1+" dev r1 weight 1") || !strings.Contains(out, "nexthop via "+gw2+" dev r2 weight 1") {
		t.Errorf("show routes does not list the ECMP members:\n%s", out)
	}
	stopFerry(t, f)
}

func TestFerrydRouteTypes(t *testing.T) {
	r, f := uplinkRig(t, `
[[route]]
prefix = "203.0.113.160/27"
type = "blackhole"

[[route]]
prefix = "203.0.113.192/27"
type = "unreachable"

[[route]]
prefix = "203.0.113.224/27"
type = "prohibit"
`)
	out, _ := run(t, r.A, 20*time.Second, "ping", "-c", "3", "-i", "0.2", "-W", "1", "203.0.113.161")
	if !strings.Contains(out, "100% packet loss") || strings.Contains(out, "Unreachable") || strings.Contains(out, "filtered") {
		t.Errorf("blackhole: want silence:\n%s", out)
	}
	out, _ = run(t, r.A, 20*time.Second, "ping", "-c", "2", "-i", "0.2", "-W", "1", "203.0.113.193")
	if !strings.Contains(out, "From "+lab.AddrR0) || !strings.Contains(out, "Destination Net Unreachable") {
		t.Errorf("unreachable: want Destination Net Unreachable from %s:\n%s", lab.AddrR0, out)
	}
	out, _ = run(t, r.A, 20*time.Second, "ping", "-c", "2", "-i", "0.2", "-W", "1", "203.0.113.225")
	if !strings.Contains(out, "From "+lab.AddrR0) || !strings.Contains(out, "Packet filtered") {
		t.Errorf("prohibit: want Packet filtered (administratively prohibited) from %s:\n%s", lab.AddrR0, out)
	}
	ifs := ctl(t, f, "show", "interfaces", "r0")
	for reason, min := range map[string]int{"blackhole": 3, "unreachable_route": 2, "prohibited": 2} {
		if n := dropCount(ifs, reason); n < min {
			t.Errorf("drop counter %s = %d, want >= %d:\n%s", reason, n, min, ifs)
		}
	}
	// Bad changes are refused with a reason and change nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for args, want := range map[string]string{
		"route add 203.0.113.0/24 via 10.1.1.1":    "not on any connected network",
		"route add 203.0.113.1/24 dev r1":          "did you mean 203.0.113.0/24",
		"route del 198.51.100.0/25":                "no such route",
		"route add blackhole 203.0.113.160/27":     "route exists",
		"route del 192.0.2.0/24":                   "connected route",
		"rule add from 192.0.2.0/24 goto 7":        "unknown word \"goto\"",
		"route load /nonexistent/ferry-routes.txt": "no such file",
	} {
		out, err := f.Ctl(ctx, strings.Fields(args)...)
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("ferryctl %s: want an error with %q, got %v: %s", args, want, err, out)
		}
	}
	stopFerry(t, f)
}

type iperfIntervals struct {
	Intervals []struct {
		Sum struct {
			Bytes int64   `json:"bytes"`
			Start float64 `json:"start"`
		} `json:"sum"`
	} `json:"intervals"`
	End struct {
		SumReceived struct {
			BitsPerSec float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

func TestFerrydRouteChangeUnderLoad(t *testing.T) {
	r, f := uplinkRig(t, fmt.Sprintf(`
[[route]]
prefix = "203.0.113.128/25"
via = %q
`, gw1))
	checkPing(t, r.A, far1)
	checkPing(t, r.A, far2)
	for _, port := range []string{"5201", "5202"} {
		p := r.B.MustStart("iperf3", "-s", "-1", "-p", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, _ := run(t, r.B, 5*time.Second, "ss", "-Hltn", "sport = :"+port)
			if strings.Contains(out, port) {
				break
			}
			if done, err := p.Exited(); done || time.Now().After(deadline) {
				t.Fatalf("iperf3 -s -p %s not listening: %v\n%s", port, err, p.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	type res struct {
		out iperfIntervals
		err error
		raw string
	}
	clients := make(chan res, 2)
	for _, c := range []struct{ dst, port string }{{far1, "5201"}, {far2, "5202"}} {
		go func() {
			out, err := run(t, r.A, 60*time.Second, "iperf3", "-c", c.dst, "-p", c.port, "-t", "6", "-i", "0.5", "-J")
			var v iperfIntervals
			if err == nil {
				err = json.Unmarshal([]byte(out), &v)
			}
			clients <- res{v, err, c.dst + ": " + out}
		}()
	}
	time.Sleep(2 * time.Second)
	_, b0 := rx(t, r, "eth1")
	// Move far1's flow to the second uplink, then back: far2's flow is
	// untouched and both keep going.
	ctl(t, f, "route", "add", far1+"/32", "via", gw2)
	time.Sleep(2 * time.Second)
	_, b1 := rx(t, r, "eth1")
	ctl(t, f, "route", "del", far1+"/32")
	time.Sleep(300 * time.Millisecond)
	_, c0 := rx(t, r, "eth1")
	time.Sleep(500 * time.Millisecond)
	_, c1 := rx(t, r, "eth1")
	if c1-c0 > 1<<20 {
		t.Errorf("%d bytes still took the second uplink after route del", c1-c0)
	}
	moved := b1 - b0
	t.Logf("bytes on the second uplink while the route pointed there: %d", moved)
	if moved < 10<<20 {
		t.Errorf("only %d bytes took the second uplink after route add; want the iperf3 flow (> 10 MiB)", moved)
	}
	for i := 0; i < 2; i++ {
		c := <-clients
		if c.err != nil || c.out.Error != "" {
			t.Errorf("iperf3 %v %s:\n%s", c.err, c.out.Error, c.raw)
			continue
		}
		for _, iv := range c.out.Intervals {
			if iv.Sum.Bytes == 0 {
				t.Errorf("%s: no data in the interval at %.1f s: the flow stalled", strings.SplitN(c.raw, ":", 2)[0], iv.Sum.Start)
			}
		}
		t.Logf("%s: %.2f Gbit/s over 6 s", strings.SplitN(c.raw, ":", 2)[0], c.out.End.SumReceived.BitsPerSec/1e9)
	}
	stopFerry(t, f)
}

// fullTable returns the shared Internet table if this checkout sits next to
// it, else writes a synthetic one of the same size (a seeded mix of /8 to
// /24 prefixes, mostly /24 as in BGP), so the test runs anywhere.
func fullTable(t *testing.T) (path string, n int) {
	t.Helper()
	shared := "../../../shared/data/bgp-full-table-prefixes.txt.gz"
	if abs, err := filepath.Abs(shared); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs, 1062046
		}
	}
	path = filepath.Join(t.TempDir(), "table.txt")
	var b strings.Builder
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[netip.Prefix]bool{}
	for len(seen) < 900000 {
		bits := 24
		if x := rng.IntN(100); x < 40 {
			bits = 16 + rng.IntN(8)
		}
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
		p, _ := a.Prefix(bits)
		if !seen[p] {
			seen[p] = true
			fmt.Fprintln(&b, p)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, len(seen)
}

func TestFerrydFullTableLoad(t *testing.T) {
	r, f := uplinkRig(t, "")
	table, _ := fullTable(t)
	checkPing(t, r.A, lab.AddrB)
	// Ping at 100/s right through the load and the collection after it:
	// forwarding must not stall.
	type pingRes struct {
		out string
		err error
	}
	pc := make(chan pingRes, 1)
	go func() {
		out, err := run(t, r.A, 60*time.Second, "ping", "-c", "900", "-i", "0.01", "-W", "1", lab.AddrB)
		pc <- pingRes{out, err}
	}()
	time.Sleep(500 * time.Millisecond)
	out := ctl(t, f, "route", "load", table, "via", gw1)
	t.Logf("%s", strings.TrimSpace(out))
	p := <-pc
	if p.err != nil || !strings.Contains(p.out, " 0% packet loss") {
		t.Errorf("ping during the load: want 0%% loss (err %v):\n%s", p.err, p.out)
	} else if m := regexp.MustCompile(`= [\d.]+/[\d.]+/([\d.]+)/`).FindStringSubmatch(p.out); m != nil {
		t.Logf("ping during the load: 0%% loss, max RTT %s ms", m[1])
	}
	slow := 0
	for _, m := range regexp.MustCompile(`time=([\d.]+) ms`).FindAllStringSubmatch(p.out, -1) {
		if v, _ := strconv.ParseFloat(m[1], 64); v > 200 {
			slow++
		}
	}
	// A stalled worker shows as a run of replies a second late; a busy
	// machine delays a few.
	if slow > 10 {
		t.Errorf("ping during the load: %d of %d replies slower than 200 ms: forwarding stalled", slow, 900)
	}
	if !regexp.MustCompile(`loaded \d{6,} routes into table main`).MatchString(out) {
		t.Errorf("route load said: %s", out)
	}
	// A prefix from the table now routes via the gateway, and B's own
	// network keeps its connected route (longest match).
	get := ctl(t, f, "route", "get", "1.0.0.1")
	if !strings.Contains(get, "via "+gw1+" dev r1") {
		t.Errorf("route get 1.0.0.1 after the load:\n%s", get)
	}
	checkPing(t, r.A, lab.AddrB)
	// Loading it again clashes with every route: refused, table unchanged.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := f.Ctl(ctx, "route", "load", table, "via", gw1); err == nil || !strings.Contains(string(out), "nothing loaded") {
		t.Errorf("a clashing reload: %v %s", err, out)
	}
	stopFerry(t, f)
}
