package filter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Random rulesets of the supported matches, statements and verdicts.
var randMatches = []string{
	"tcp dport %p", "udp dport %p", "th dport { %p, %p }", "tcp dport %p-%p", "udp sport %p",
	"tcp dport != %p", "udp dport { %p, 1000-1010 }", "th dport @ports", "tcp dport != @ports",
	"ip saddr 192.0.2.0/25", "ip daddr 198.51.100.%b", "ip saddr @s4", "ip daddr != @s4",
	"ip saddr { 192.0.2.128/26, 203.0.113.0-203.0.113.50 }", "ip6 saddr 2001:db8::/33", "ip6 daddr @s6",
	"ip6 daddr != 2001:db8:1::-2001:db8:1::ff", "ip protocol icmp", "ip protocol { tcp, udp }",
	"meta l4proto udp", "meta l4proto != tcp", "ip6 nexthdr icmpv6", "meta nfproto ipv6",
	"icmp type echo-request", "icmp type != echo-reply", "icmp code { 0, 3 }", "icmpv6 type echo-request",
	"ct state new", "ct state established,related", "ct state != invalid", "ct state { new, untracked }",
	"tcp flags syn", "tcp flags syn / syn,ack", "tcp flags & (fin|rst) != 0", "tcp flags == ack",
	`iifname "r*"`, `iifname != "r0"`, `oif "r1"`, `oifname { "eth0", "r2" }`,
	"meta mark 0x1", "meta mark != 2", "ct mark & 0x3 == 0x1", "meta length > 500", "ip length 0-200",
	"ip dscp ef", "ip6 dscp != cs0",
}

var randStmts = []string{"counter", "meta mark set 1", "ct mark set 3", "meta mark set 2"}

var randVerdicts = []string{"accept", "drop", "reject", "jump u1", "goto u2", "return", "", "", ""}

var randPorts = []int{22, 53, 80, 443, 1000, 1005, 8080}

func randRule(r *rand.Rand, verdicts []string) string {
	var parts []string
	n := r.IntN(4)
	for i := 0; i < n; i++ {
		if r.IntN(6) == 0 {
			parts = append(parts, randStmts[r.IntN(len(randStmts))])
			continue
		}
		m := randMatches[r.IntN(len(randMatches))]
		if strings.Contains(m, "%p-%p") {
			a, b := randPorts[r.IntN(len(randPorts))], randPorts[r.IntN(len(randPorts))]
			m = strings.Replace(m, "%p-%p", fmt.Sprintf("%d-%d", min(a, b), max(a, b)), 1)
		}
		for strings.Contains(m, "%p") {
			m = strings.Replace(m, "%p", fmt.Sprint(randPorts[r.IntN(len(randPorts))]), 1)
		}
		m = strings.ReplaceAll(m, "%b", fmt.Sprint(r.IntN(4)))
		parts = append(parts, m)
	}
	if v := verdicts[r.IntN(len(verdicts))]; v != "" {
		parts = append(parts, v)
	}
	if len(parts) == 0 {
		parts = append(parts, "counter")
	}
	return strings.Join(parts, " ")
}

const randSets = ` set s4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/28, 198.51.100.2, 203.0.113.0-203.0.113.9 } }
 set s6 { type ipv6_addr; flags interval; elements = { 2001:db8:1::/48, 2001:db8::1 } }
 set ports { type inet_service; flags interval; elements = { 22, 1000-1003 } }
`

// randGoodRule draws rules until one compiles on its own (random
// matches often contradict each other: tcp dport with icmp type).
func randGoodRule(t testing.TB, r *rand.Rand, verdicts []string) string {
	for attempt := 0; attempt < 1000; attempt++ {
		rule := randRule(r, verdicts)
		probe := "table inet t {\n" + randSets + " chain u1 { }\n chain u2 { }\n chain c {\n" + rule + "\n }\n}\n"
		if _, err := Load("probe.nft", probe, testEnv); err == nil {
			return rule
		}
	}
	t.Fatal("no random rule compiled in 1000 attempts")
	return ""
}

// randRuleset builds a ruleset of two base chains at the forward hook
// and two regular chains (u1 may jump or go to u2), rules per chain.
func randRuleset(t testing.TB, r *rand.Rand, rules int) (string, *Program) {
	var b strings.Builder
	b.WriteString("table inet t {\n" + randSets)
	chains := []struct {
		head  string
		verds []string
	}{
		{" chain u2 {\n", []string{"accept", "drop", "reject", "return", "", ""}},
		{" chain u1 {\n", []string{"accept", "drop", "goto u2", "jump u2", "return", "", ""}},
		{" chain f1 {\n  type filter hook forward priority 0; policy accept;\n", randVerdicts},
		{" chain f2 {\n  type filter hook forward priority -5; policy drop;\n", randVerdicts},
	}
	for _, c := range chains {
		b.WriteString(c.head)
		for i := 0; i < rules; i++ {
			b.WriteString("  " + randGoodRule(t, r, c.verds) + "\n")
		}
		b.WriteString(" }\n")
	}
	b.WriteString("}\n")
	src := b.String()
	p, err := Load("rand.nft", src, testEnv)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return src, p
}

var randAddrs4 = []string{"192.0.2.1", "192.0.2.9", "192.0.2.130", "198.51.100.2", "198.51.100.3", "203.0.113.5", "203.0.113.77"}
var randAddrs6 = []string{"2001:db8::1", "2001:db8::2", "2001:db8:1::5", "2001:db8:1::1ff", "2001:db8:8000::1"}
var randProtos = []uint8{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, ProtoSCTP, ProtoGRE}

func randPacket(t testing.TB, r *rand.Rand) Packet {
	var p Packet
	if r.IntN(3) == 0 {
		p = pkt6(t, randAddrs6[r.IntN(len(randAddrs6))], randAddrs6[r.IntN(len(randAddrs6))], 0, 0, 0)
	} else {
		p = pkt4(t, randAddrs4[r.IntN(len(randAddrs4))], randAddrs4[r.IntN(len(randAddrs4))], 0, 0, 0)
	}
	p.L4Proto = randProtos[r.IntN(len(randProtos))]
	p.SrcPort = uint16(randPorts[r.IntN(len(randPorts))])
	p.DstPort = uint16(randPorts[r.IntN(len(randPorts))])
	if r.IntN(8) == 0 {
		p.DstPort = uint16(r.IntN(65536))
	}
	p.HasPorts = r.IntN(10) != 0
	p.ICMPType = []uint8{0, 8, 3, 128}[r.IntN(4)]
	p.ICMPCode = uint8(r.IntN(4))
	p.TCPFlags = uint8(r.IntN(256))
	p.CtState = uint8(1 << r.IntN(5))
	p.Mark = uint32(r.IntN(3))
	p.CtMark = uint32(r.IntN(4))
	p.Length = uint32(r.IntN(1500))
	p.DSCP = []uint8{0, 46, 8}[r.IntN(3)]
	p.IIf = r.IntN(6) - 1
	p.OIf = r.IntN(6) - 1
	return p
}

// TestIndexAgreesWithNaive: on random rulesets and packets, the indexed
// Program, the same Program walking every rule, and the syntax-tree
// interpreter give the same result, and the indexed and linear programs
// count the same.
func TestIndexAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rulesets, packets := 300, 300
	if testing.Short() {
		rulesets = 50
	}
	for i := 0; i < rulesets; i++ {
		src, idx := randRuleset(t, r, 1+r.IntN(12))
		lin, _ := Load("rand.nft", src, testEnv)
		lin.linear = true
		ref := &naive{rs: idx.rs, env: testEnv}
		ci, cl := idx.NewCounters(), lin.NewCounters()
		for j := 0; j < packets; j++ {
			p := randPacket(t, r)
			a, b, c := p, p, p
			got := idx.Eval(HookForward, &a, ci, 0)
			want := lin.Eval(HookForward, &b, cl, 0)
			naive := ref.eval(HookForward, &c)
			if got != want || got != naive {
				t.Fatalf("ruleset %d packet %+v:\nindexed %+v\nlinear  %+v\nnaive   %+v\n%s", i, p, got, want, naive, src)
			}
		}
		pi, bi := idx.CounterValues(ci)
		pl, bl := lin.CounterValues(cl)
		if fmt.Sprint(pi, bi) != fmt.Sprint(pl, bl) {
			t.Fatalf("ruleset %d: counters indexed %v %v, linear %v %v\n%s", i, pi, bi, pl, bl, src)
		}
	}
}

// TestListingRoundTrip: parse, list, parse again: the same listing, and
// the same results on random packets.
func TestListingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100; i++ {
		src, p1 := randRuleset(t, r, 1+r.IntN(10))
		l1 := p1.Listing()
		p2, err := Load("listed.nft", l1, testEnv)
		if err != nil {
			t.Fatalf("listing does not parse: %v\n%s\nfrom\n%s", err, l1, src)
		}
		if l2 := p2.Listing(); l2 != l1 {
			t.Fatalf("listing changed:\n%s\nthen\n%s", l1, l2)
		}
		for j := 0; j < 100; j++ {
			p := randPacket(t, r)
			a, b := p, p
			if x, y := p1.Eval(HookForward, &a, nil, 0), p2.Eval(HookForward, &b, nil, 0); x != y {
				t.Fatalf("results differ on %+v: %+v vs %+v\n%s", p, x, y, l1)
			}
		}
	}
}

// TestIndexBudgetFallback: when port lists would exceed indexBudget
// (many ports times many rules without a port), the protocol keeps one
// list and results still equal the linear walk.
func TestIndexBudgetFallback(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 1500; i++ { // 1,500 ports x 751 lists > indexBudget
		fmt.Fprintf(&b, "udp dport %d counter drop\n", 2000+i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "udp sport %d counter accept\n", 100+i)
		}
	}
	src := chain("accept", b.String())
	idx := mustLoad(t, src)
	if pi := idx.hooks[HookForward][0].idx.proto[ProtoUDP]; pi.slot != nil {
		t.Fatal("the index kept port lists past its budget")
	}
	lin := mustLoad(t, src)
	lin.linear = true
	r := rand.New(rand.NewPCG(11, 12))
	ci, cl := idx.NewCounters(), lin.NewCounters()
	for i := 0; i < 2000; i++ {
		p := pkt4(t, "192.0.2.1", "198.51.100.1", ProtoUDP, uint16(100+r.IntN(1200)), uint16(1990+r.IntN(1200)))
		a, b := p, p
		if x, y := idx.Eval(HookForward, &a, ci, 0), lin.Eval(HookForward, &b, cl, 0); x != y {
			t.Fatalf("%+v: indexed %+v, linear %+v", p, x, y)
		}
	}
	pi, _ := idx.CounterValues(ci)
	pl, _ := lin.CounterValues(cl)
	if fmt.Sprint(pi) != fmt.Sprint(pl) {
		t.Fatal("counters differ")
	}
}
