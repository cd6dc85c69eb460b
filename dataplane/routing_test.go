package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ferry-router/ferry/config"
)

var (
	macC = [6]byte{2, 0, 0, 0, 0, 0xc}
	ipC  = netip.MustParseAddr("198.51.100.3")
	ipA2 = netip.MustParseAddr("192.0.2.3")
	ipX  = netip.MustParseAddr("203.0.113.9")
)

// withC adds a second gateway on r1, 198.51.100.3 (MAC macC), and the
// routes and rules given.
func withC(routes []config.Route, rules []config.Rule) func(*config.Config) {
	return func(c *config.Config) {
		c.Neighbors = append(c.Neighbors, config.Neighbor{IP: ipC, MAC: macC[:], Dev: "r1"})
		c.Tables = []config.Table{{ID: 100, Name: "up2"}}
		for i := range routes {
			if routes[i].Table == 0 {
				routes[i].Table = config.TableMain
			}
		}
		c.Routes, c.Rules = routes, rules
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func udpFlow(src netip.Addr, sport uint16) []byte {
	p := udpPayload(16)
	binary.BigEndian.PutUint16(p[0:], sport)
	return pktSpec{srcMAC: macA, dstMAC: macR0, src: src, dst: ipX, proto: protoUDP, ttl: 64, payload: p}.frame()
}

func dstMAC(f []byte) [6]byte { return [6]byte(f[0:6]) }

func TestPolicyRoutingBySource(t *testing.T) {
	g := newRig(t, withC(
		[]config.Route{
			{Prefix: pfx("203.0.113.0/24"), Via: ipB, Dev: "r1"},
			{Prefix: pfx("0.0.0.0/0"), Via: ipC, Dev: "r1", Table: 100},
		},
		[]config.Rule{{Priority: 100, From: pfx("192.0.2.3/32"), Action: "lookup", Table: 100}},
	))
	g.run(0, udpFlow(ipA, 1000), udpFlow(ipA2, 1000))
	out := g.sent(1)
	if len(out) != 2 {
		t.Fatalf("sent %d, want 2; drops %v", len(out), g.drops(0))
	}
	if dstMAC(out[0]) != macB || dstMAC(out[1]) != macC {
		t.Errorf("from .2 went to %x, from .3 to %x; want B then C", dstMAC(out[0]), dstMAC(out[1]))
	}
	// The local rule comes first: table 100's default route does not
	// capture ferry's own address.
	echo := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA2, dst: ipR0, proto: protoICMP, ttl: 64, payload: echoRequest(8)}
	g.run(0, echo.frame())
	if back := g.sent(0); len(back) != 1 {
		t.Fatalf("echo to ferry from the policy-routed source: %d replies, drops %v", len(back), g.drops(0))
	}
	// fwmark and iif selectors: a rule for another port does not match.
	if err := g.r.AddRule(config.Rule{Priority: 50, IIf: "r1", Action: "prohibit"}); err != nil {
		t.Fatal(err)
	}
	g.run(0, udpFlow(ipA, 1000))
	if out := g.sent(1); len(out) != 1 {
		t.Errorf("a rule for iif r1 caught a packet from r0")
	}
	rules := g.r.Rules()
	if len(rules) != 4 || rules[0].Action != "lookup local" || rules[1].Priority != 50 || rules[2].Action != "lookup up2" || rules[3].Action != "lookup main" {
		t.Errorf("rules %+v", rules)
	}
	get, err := g.r.RouteGet(ipX, ipA2, "r0", 0)
	if err != nil || get.Table != "up2" || get.Via != ipC.String() || get.Rule.Priority != 100 {
		t.Errorf("route get: %+v %v", get, err)
	}
}

func TestECMPSpreadsAndKeepsFlows(t *testing.T) {
	g := newRig(t, withC([]config.Route{{Prefix: pfx("203.0.113.0/24"),
		Nexthops: []config.Nexthop{{Via: ipB, Dev: "r1", Weight: 1}, {Via: ipC, Dev: "r1", Weight: 1}}}}, nil))
	const flows = 200
	first := map[uint16][6]byte{}
	count := map[[6]byte]int{}
	for round := 0; round < 3; round++ {
		for f := uint16(0); f < flows; f++ {
			g.run(0, udpFlow(ipA, 20000+f))
			out := g.sent(1)
			if len(out) != 1 {
				t.Fatalf("flow %d: sent %d; drops %v", f, len(out), g.drops(0))
			}
			m := dstMAC(out[0])
			if round == 0 {
				first[f] = m
				count[m]++
			} else if first[f] != m {
				t.Fatalf("flow %d moved from %x to %x", f, first[f], m)
			}
		}
	}
	if count[macB] < flows/4 || count[macC] < flows/4 {
		t.Errorf("spread %v over %d flows, want both next hops well used", count, flows)
	}
	// Removing one member moves only its flows.
	if err := g.r.DeleteRoute(config.Route{Prefix: pfx("203.0.113.0/24"), Table: config.TableMain}); err != nil {
		t.Fatal(err)
	}
	if err := g.r.AddRoute(config.Route{Prefix: pfx("203.0.113.0/24"), Table: config.TableMain,
		Nexthops: []config.Nexthop{{Via: ipB, Dev: "r1", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	for f := uint16(0); f < flows; f++ {
		g.run(0, udpFlow(ipA, 20000+f))
		if m := dstMAC(g.sent(1)[0]); m != macB {
			t.Fatalf("flow %d went to %x after C was removed", f, m)
		}
	}
}

func TestRouteTypesAndFailover(t *testing.T) {
	g := newRig(t, withC([]config.Route{
		{Prefix: pfx("203.0.113.0/26"), Type: "blackhole"},
		{Prefix: pfx("203.0.113.64/26"), Type: "unreachable"},
		{Prefix: pfx("203.0.113.128/26"), Type: "prohibit"},
		{Prefix: pfx("203.0.113.192/26"), Via: ipB, Dev: "r1", Metric: 10},
		{Prefix: pfx("203.0.113.192/26"), Via: ipC, Dev: "r1", Metric: 20},
	}, nil))
	to := func(d string) []byte {
		return pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: netip.MustParseAddr(d), proto: protoUDP, ttl: 64, payload: udpPayload(8)}.frame()
	}
	g.run(0, to("203.0.113.1"))
	if len(g.sent(0))+len(g.sent(1)) != 0 || g.drops(0)["blackhole"] != 1 {
		t.Errorf("blackhole: drops %v", g.drops(0))
	}
	for _, tc := range []struct {
		dst  string
		code byte
	}{{"203.0.113.65", icmpNetUnreachable}, {"203.0.113.129", icmpAdminProhibited}} {
		g.run(0, to(tc.dst))
		out := g.sent(0)
		if len(out) != 1 {
			t.Fatalf("%s: %d replies", tc.dst, len(out))
		}
		if typ, code, _, _ := icmpErrorFrom(t, out[0]); typ != icmpDestUnreachable || code != tc.code {
			t.Errorf("%s: ICMP %d/%d, want 3/%d", tc.dst, typ, code, tc.code)
		}
	}
	g.run(0, to("203.0.113.200"))
	if out := g.sent(1); len(out) != 1 || dstMAC(out[0]) != macB {
		t.Fatalf("best metric not used")
	}
	if err := g.r.DeleteRoute(config.Route{Prefix: pfx("203.0.113.192/26"), Metric: 10, Table: config.TableMain}); err != nil {
		t.Fatal(err)
	}
	g.run(0, to("203.0.113.200"))
	if out := g.sent(1); len(out) != 1 || dstMAC(out[0]) != macC {
		t.Fatalf("metric 20 did not take over")
	}
	if err := g.r.DeleteRoute(config.Route{Prefix: pfx("203.0.113.192/26"), Metric: 10, Table: config.TableMain}); err == nil {
		t.Errorf("deleting a missing route succeeded")
	}
	if err := g.r.DeleteRoute(config.Route{Prefix: pfx("192.0.2.0/24"), Table: config.TableMain}); err == nil {
		t.Errorf("deleting a connected route succeeded")
	}
}

func TestLoadRoutesIsAllOrNothing(t *testing.T) {
	g := newRig(t, withC(nil, nil))
	ok := []config.Route{
		{Prefix: pfx("203.0.113.0/25"), Via: ipB, Table: 100},
		{Prefix: pfx("203.0.113.128/25"), Via: ipC, Table: 100},
	}
	n, err := g.r.LoadRoutes(100, ok)
	if err != nil || n != 2 {
		t.Fatalf("load: %d %v", n, err)
	}
	dup := []config.Route{{Prefix: pfx("198.51.100.128/25"), Via: ipB, Table: 100}, {Prefix: pfx("203.0.113.0/25"), Via: ipC, Table: 100}}
	if _, err := g.r.LoadRoutes(100, dup); err == nil {
		t.Fatal("a load clashing with an existing route succeeded")
	}
	rows, _ := g.r.TableRoutes(100)
	if len(rows) != 2 {
		t.Errorf("failed load left %d routes, want the 2 from before", len(rows))
	}
}

func TestZeroAllocsWithPolicyAndECMP(t *testing.T) {
	g := newRig(t, withC(
		[]config.Route{{Prefix: pfx("203.0.113.0/24"), Table: 100,
			Nexthops: []config.Nexthop{{Via: ipB, Dev: "r1", Weight: 1}, {Via: ipC, Dev: "r1", Weight: 2}}}},
		[]config.Rule{{Priority: 100, From: pfx("192.0.2.0/24"), Action: "lookup", Table: 100}}))
	q := g.links[0].queues[0]
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), udpFlow(ipA, uint16(i))...))
	}
	q.keep = true
	g.links[1].queues[0].keep = true
	g.w.read()
	g.w.process()
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of 64 with rules and ECMP", allocs)
	}
	if !bytes.Equal(g.links[0].mac, macR0[:]) {
		t.Fatal("rig changed")
	}
}
