package filter

import (
	"strings"
	"testing"
)

func TestSemantics(t *testing.T) {
	tcp22 := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22)
	udp53 := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoUDP, 40000, 53)
	v6tcp := pkt6(t, "2001:db8::1", "2001:db8:1::1", ProtoTCP, 40000, 22)
	trunc := tcp22
	trunc.HasPorts = false
	icmpEcho := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoICMP, 0, 0)
	icmpEcho.ICMPType = 8
	syn := tcp22
	syn.TCPFlags = TCPSyn
	synack := tcp22
	synack.TCPFlags = TCPSyn | TCPAck
	newc := tcp22
	newc.CtState = CtNew
	rel := tcp22
	rel.CtState = CtRelated
	fromEth := tcp22
	fromEth.IIf = 3
	noOif := tcp22
	noOif.OIf = -1
	other := pkt4(t, "203.0.113.1", "198.51.100.5", ProtoUDP, 40000, 53)

	const users = `
 chain a { tcp dport 22 jump b; drop }
 chain b { ip saddr 192.0.2.10 return; accept }
 chain g { tcp dport 22 accept }
 chain deep { jump b }
`
	withUsers := func(policy, rules string) string {
		return "table inet t {\n" + users + " chain fwd {\n  type filter hook forward priority 0; policy " + policy + ";\n" + rules + "\n }\n}\n"
	}

	tests := []struct {
		name string
		src  string
		pkt  Packet
		want Action
	}{
		{"first match wins", chain("drop", "tcp dport 22 accept\ntcp dport 22 drop"), tcp22, ActAccept},
		{"first match wins (drop first)", chain("accept", "tcp dport 22 drop\ntcp dport 22 accept"), tcp22, ActDrop},
		{"policy drop", chain("drop", "tcp dport 80 accept"), tcp22, ActDrop},
		{"policy accept", chain("accept", "tcp dport 80 drop"), tcp22, ActAccept},
		{"rule without verdict continues", chain("drop", "tcp dport 22 counter\nudp dport 53 accept"), tcp22, ActDrop},
		{"udp port", chain("drop", "udp dport 53 accept"), udp53, ActAccept},
		{"tcp port does not match udp", chain("drop", "tcp dport 53 accept"), udp53, ActDrop},
		{"th dport matches udp", chain("drop", "th dport 53 accept"), udp53, ActAccept},
		{"port range", chain("drop", "tcp dport 20-25 accept"), tcp22, ActAccept},
		{"port range miss", chain("drop", "tcp dport 23-25 accept"), tcp22, ActDrop},
		{"port lt", chain("drop", "tcp dport < 23 accept"), tcp22, ActAccept},
		{"port gt", chain("drop", "tcp dport > 22 accept"), tcp22, ActDrop},
		{"anonymous port set", chain("drop", "tcp dport { 21, 22, 80 } accept"), tcp22, ActAccept},
		{"anonymous port set with range", chain("drop", "tcp dport { 80, 10-30 } accept"), tcp22, ActAccept},
		{"negated port", chain("drop", "tcp dport != 22 accept"), tcp22, ActDrop},
		{"negated port set", chain("drop", "tcp dport != { 80, 443 } accept"), tcp22, ActAccept},
		{"truncated: port rule no match", chain("accept", "tcp dport 22 drop"), trunc, ActAccept},
		{"truncated: negated port rule no match", chain("accept", "tcp dport != 80 drop"), trunc, ActAccept},
		{"truncated: protocol still matches", chain("drop", "meta l4proto tcp accept"), trunc, ActAccept},
		{"saddr prefix", chain("drop", "ip saddr 192.0.2.0/24 accept"), tcp22, ActAccept},
		{"saddr prefix miss", chain("drop", "ip saddr 192.0.2.0/29 accept"), tcp22, ActDrop},
		{"saddr negated", chain("drop", "ip saddr != 198.51.100.0/24 accept"), tcp22, ActAccept},
		{"daddr exact", chain("drop", "ip daddr 198.51.100.5 accept"), tcp22, ActAccept},
		{"daddr range", chain("drop", "ip daddr 198.51.100.1-198.51.100.9 accept"), tcp22, ActAccept},
		{"daddr anonymous set", chain("drop", "ip daddr { 203.0.113.0/24, 198.51.100.5 } accept"), tcp22, ActAccept},
		{"ip saddr never matches IPv6, negated or not", chain("accept", "ip saddr != 192.0.2.0/24 drop"), v6tcp, ActAccept},
		{"ip6 saddr", chain("drop", "ip6 saddr 2001:db8::/48 accept"), v6tcp, ActAccept},
		{"ip6 daddr miss", chain("drop", "ip6 daddr 2001:db8::/48 accept"), v6tcp, ActDrop},
		{"ip6 range", chain("drop", "ip6 daddr 2001:db8:1::-2001:db8:1::ff accept"), v6tcp, ActAccept},
		{"nfproto", chain("drop", "meta nfproto ipv6 accept"), v6tcp, ActAccept},
		{"ip protocol", chain("drop", "ip protocol tcp accept"), tcp22, ActAccept},
		{"ip protocol set", chain("drop", "ip protocol { udp, icmp } accept"), tcp22, ActDrop},
		{"icmp type", chain("drop", "icmp type echo-request accept"), icmpEcho, ActAccept},
		{"icmp type miss", chain("drop", "icmp type echo-reply accept"), icmpEcho, ActDrop},
		{"icmp type set", chain("drop", "icmp type { echo-reply, echo-request } accept"), icmpEcho, ActAccept},
		{"ct state list", chain("drop", "ct state established,related accept"), tcp22, ActAccept},
		{"ct state list related", chain("drop", "ct state established,related accept"), rel, ActAccept},
		{"ct state new miss", chain("drop", "ct state established,related accept"), newc, ActDrop},
		{"ct state negated", chain("drop", "ct state != established,related accept"), newc, ActAccept},
		{"ct state negated miss", chain("drop", "ct state != new accept"), newc, ActDrop},
		{"tcp flags syn (any)", chain("drop", "tcp flags syn accept"), synack, ActAccept},
		{"tcp flags == syn exact", chain("drop", "tcp flags == syn accept"), synack, ActDrop},
		{"tcp flags == syn|ack exact", chain("drop", "tcp flags == syn|ack accept"), synack, ActAccept},
		{"tcp flags mask form", chain("drop", "tcp flags & (syn|ack) == syn accept"), syn, ActAccept},
		{"tcp flags mask form miss", chain("drop", "tcp flags & (syn|ack) == syn accept"), synack, ActDrop},
		{"tcp flags slash form", chain("drop", "tcp flags syn / syn,ack accept"), syn, ActAccept},
		{"tcp flags slash form miss", chain("drop", "tcp flags syn / syn,ack accept"), synack, ActDrop},
		{"tcp flags mask !=", chain("drop", "tcp flags & (syn|ack) != syn accept"), synack, ActAccept},
		{"tcp flags none set", chain("drop", "tcp flags != fin,rst accept"), syn, ActAccept},
		{"iifname", chain("drop", `iifname "r0" accept`), tcp22, ActAccept},
		{"iifname set", chain("drop", `iifname { "r2", "r0" } accept`), tcp22, ActAccept},
		{"iifname wildcard", chain("drop", `iifname "eth*" accept`), fromEth, ActAccept},
		{"iifname wildcard miss", chain("drop", `iifname "eth*" accept`), tcp22, ActDrop},
		{"oif", chain("drop", `oif "r1" accept`), tcp22, ActAccept},
		{"oifname negated, no output port", chain("drop", `oifname != "r1" accept`), noOif, ActAccept},
		{"meta length", chain("drop", "meta length 100 accept"), tcp22, ActAccept},
		{"ip length range", chain("drop", "ip length 0-99 accept"), tcp22, ActDrop},
		{"dscp name", chain("drop", "ip dscp cs0 accept"), tcp22, ActAccept},
		{"dscp ef miss", chain("drop", "ip dscp ef accept"), tcp22, ActDrop},
		{"meta mark set then match", chain("drop", "meta mark set 7\nmeta mark 7 accept"), tcp22, ActAccept},
		{"ct mark masked", chain("drop", "ct mark set 0x1ff\nct mark & 0xff == 0xff accept"), tcp22, ActAccept},
		{"reject", chain("accept", "tcp dport 22 reject"), tcp22, ActReject},
		{"jump then verdict in callee", withUsers("accept", "jump a"), udp53, ActDrop},
		{"jump, return, continue in caller", withUsers("accept", "jump a\naccept"), tcp22, ActDrop},
		{"jump to chain that accepts", withUsers("drop", "jump b"), other, ActAccept},
		{"jump to chain that returns", withUsers("drop", "jump b\naccept"), udp53, ActAccept},
		{"return from callee falls to next rule", withUsers("drop", "jump b\nudp dport 53 accept"), tcp22, ActDrop},
		{"goto: callee falls off, caller does not resume", withUsers("drop", "tcp dport 22 goto g\naccept"), udp53, ActAccept},
		{"goto accepts", withUsers("drop", "goto g"), tcp22, ActAccept},
		{"goto end applies policy", withUsers("drop", "goto g\naccept"), udp53, ActDrop},
		{"return in base applies policy", chain("drop", "return\naccept"), tcp22, ActDrop},
		{"nested jump return", withUsers("drop", "jump deep\ntcp dport 22 accept"), tcp22, ActAccept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, linear := range []bool{false, true} {
				p := mustLoad(t, tc.src)
				p.linear = linear
				pk := tc.pkt
				got := p.Eval(HookForward, &pk, p.NewCounters(), 0)
				if got.Action != tc.want {
					t.Fatalf("linear=%v: got %v, want %v\n%s", linear, got.Action, tc.want, tc.src)
				}
			}
		})
	}
}

func TestBaseChainsByPriority(t *testing.T) {
	tcp22 := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22)
	src := `table ip a {
  chain late { type filter hook forward priority filter + 10; policy accept; tcp dport 22 drop }
  chain early { type filter hook forward priority mangle; policy accept; tcp dport 22 accept }
}
table ip6 b {
  chain six { type filter hook forward priority raw; policy drop; }
}`
	p := mustLoad(t, src)
	// The early chain's accept does not end evaluation: the later chain drops.
	if got := p.Eval(HookForward, &tcp22, nil, 0); got.Action != ActDrop {
		t.Fatalf("accept then drop: got %v", got.Action)
	}
	// The ip6 table's drop policy does not touch IPv4.
	udp := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoUDP, 1, 2)
	if got := p.Eval(HookForward, &udp, nil, 0); got.Action != ActAccept {
		t.Fatalf("udp: got %v", got.Action)
	}
	v6 := pkt6(t, "2001:db8::1", "2001:db8::2", ProtoUDP, 1, 2)
	if got := p.Eval(HookForward, &v6, nil, 0); got.Action != ActDrop {
		t.Fatalf("v6: got %v", got.Action)
	}
	// Other hooks have no chains: accept.
	if got := p.Eval(HookInput, &v6, nil, 0); got.Action != ActAccept {
		t.Fatalf("input: got %v", got.Action)
	}
	// A drop in an earlier chain is final.
	p = mustLoad(t, `table inet x {
  chain a { type filter hook input priority 10; policy accept; accept }
  chain b { type filter hook input priority -10; policy drop; }
}`)
	if got := p.Eval(HookInput, &udp, nil, 0); got.Action != ActDrop {
		t.Fatalf("drop first: got %v", got.Action)
	}
}

func TestResultMarksAndReject(t *testing.T) {
	pk := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22)
	p := mustLoad(t, chain("accept", "meta mark set 0x10 ct mark set 5\ntcp dport 22 reject with tcp reset"))
	got := p.Eval(HookForward, &pk, nil, 0)
	want := Result{Action: ActReject, Reject: RejectTCPReset, SetMark: true, Mark: 0x10, SetCtMark: true, CtMark: 5}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		with string
		want RejectKind
	}{
		{"", RejectPortUnreachable},
		{"with icmp type host-unreachable", RejectHostUnreachable},
		{"with icmp admin-prohibited", RejectAdminProhibited},
		{"with icmp type net-unreachable", RejectNetUnreachable},
		{"with icmpx type port-unreachable", RejectPortUnreachable},
		{"with icmpx type admin-prohibited", RejectAdminProhibited},
		{"with icmpx type no-route", RejectNetUnreachable},
	} {
		q := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoUDP, 1, 2)
		p := mustLoad(t, chain("accept", "meta nfproto ipv4 reject "+tc.with))
		if got := p.Eval(HookForward, &q, nil, 0); got.Action != ActReject || got.Reject != tc.want {
			t.Errorf("reject %s: got %+v", tc.with, got)
		}
	}
}

func TestLimit(t *testing.T) {
	pk := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoUDP, 1, 2)
	p := mustLoad(t, chain("drop", "limit rate 2/second burst 3 packets accept"))
	const s = int64(1e9)
	var got []Action
	for _, now := range []int64{0, 0, 0, 0, s / 2, s / 2, s, 10 * s, 10 * s, 10 * s, 10 * s} {
		got = append(got, p.Eval(HookForward, &pk, nil, now).Action)
	}
	want := []Action{ActAccept, ActAccept, ActAccept, ActDrop, ActAccept, ActDrop, ActAccept, ActAccept, ActAccept, ActAccept, ActDrop}
	if len(got) != len(want) {
		t.Fatal(got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("packet %d: got %v, want %v (all %v)", i, got[i], want[i], got)
		}
	}
	// over: matches only above the rate.
	p = mustLoad(t, chain("accept", "limit rate over 1/minute drop"))
	got = got[:0]
	for i := 0; i < 7; i++ {
		got = append(got, p.Eval(HookForward, &pk, nil, 0).Action)
	}
	if got[4] != ActAccept || got[5] != ActDrop || got[6] != ActDrop {
		t.Fatalf("limit over with the default burst of 5: %v", got)
	}
}

func TestLogRateLimited(t *testing.T) {
	var events []LogEvent
	env := testEnv
	env.LogRate, env.LogBurst = 1, 2
	env.Log = func(e LogEvent) { events = append(events, e) }
	p, err := Load("t", chain("accept", `tcp dport 22 log prefix "ssh: " level warn`), env)
	if err != nil {
		t.Fatal(err)
	}
	pk := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22)
	for i := 0; i < 10; i++ {
		p.Eval(HookForward, &pk, nil, 0)
	}
	p.Eval(HookForward, &pk, nil, 2e9)
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3 (burst 2, then one after 2s)", len(events))
	}
	e := events[2]
	if e.Prefix != "ssh: " || e.Level != "warn" || e.Chain != "fwd" || e.Hook != HookForward || e.Suppressed != 8 || e.Packet.DstPort != 22 {
		t.Fatalf("event %+v", e)
	}
}

func TestCountersAndReset(t *testing.T) {
	p := mustLoad(t, chain("drop", "tcp dport 22 counter accept\ncounter"))
	w1, w2 := p.NewCounters(), p.NewCounters()
	a := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22)
	b := pkt4(t, "192.0.2.10", "198.51.100.5", ProtoUDP, 40000, 22)
	b.Length = 1000
	for i := 0; i < 3; i++ {
		p.Eval(HookForward, &a, w1, 0)
	}
	p.Eval(HookForward, &a, w2, 0)
	p.Eval(HookForward, &b, w2, 0)
	pk, by := p.CounterValues(w1, w2)
	if pk[0] != 4 || by[0] != 400 || pk[1] != 1 || by[1] != 1000 {
		t.Fatalf("counters %v %v", pk, by)
	}
	l := p.Listing(w1, w2)
	for _, want := range []string{"tcp dport 22 counter packets 4 bytes 400 accept", "\t\tcounter packets 1 bytes 1000\n"} {
		if !contains(l, want) {
			t.Fatalf("listing lacks %q:\n%s", want, l)
		}
	}
	p.ResetCounters(w1, w2)
	p.Eval(HookForward, &a, w1, 0)
	if pk, _ := p.CounterValues(w1, w2); pk[0] != 1 || pk[1] != 0 {
		t.Fatalf("after reset: %v", pk)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestEvalAllocs(t *testing.T) {
	p := mustLoad(t, `table inet f {
  set trusted { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 198.51.100.7 } }
  set ports { type inet_service; elements = { 22, 443 } }
  chain sub { ip6 saddr 2001:db8::/32 return; counter; log prefix "x"; accept }
  chain fwd {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "r0" ip saddr @trusted tcp dport @ports ct state new counter accept
    tcp flags syn / syn,ack limit rate 100/second jump sub
    meta mark set 3 udp dport { 53, 123 } reject
  }
}`)
	ctr := p.NewCounters()
	pkts := []Packet{
		pkt4(t, "192.0.2.10", "198.51.100.5", ProtoTCP, 40000, 22),
		pkt4(t, "203.0.113.1", "198.51.100.5", ProtoUDP, 40000, 53),
		pkt6(t, "2001:db8::1", "2001:db8::2", ProtoTCP, 1, 80),
	}
	pkts[0].CtState = CtNew
	pkts[2].CtState, pkts[2].TCPFlags = CtNew, TCPSyn
	var now int64
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range pkts {
			now += 1000
			pk := pkts[i]
			p.Eval(HookForward, &pk, ctr, now)
		}
	})
	if allocs != 0 {
		t.Fatalf("Eval allocates %.1f times per run", allocs)
	}
}

func TestUsesConntrack(t *testing.T) {
	for src, want := range map[string]bool{
		"table ip t { chain c { type filter hook forward priority 0; udp dport 9 drop; } }":                  false,
		"table ip t { chain c { type filter hook forward priority 0; ct state established accept; } }":       true,
		"table ip t { chain c { type filter hook forward priority 0; } chain d { ct mark 1 drop; } }":        true,
		"table ip t { chain c { type filter hook forward priority 0; tcp dport 22 ct mark set 5 accept; } }": true,
	} {
		p, err := Load("t.nft", src, Env{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.UsesConntrack(); got != want {
			t.Errorf("%s: UsesConntrack %v, want %v", src, got, want)
		}
	}
}

func TestNATChains(t *testing.T) {
	src := `table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "r1" tcp dport 8080 counter dnat to 192.0.2.10:80
		iifname "r1" udp dport 5000-5010 dnat ip to 192.0.2.11-192.0.2.12
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.0.2.0/24 oifname "r1" masquerade random
		ip saddr 203.0.113.0/24 snat to 198.51.100.7:20000-30000
	}
}
table ip filter {
	chain fwd { type filter hook forward priority 0; policy accept; }
}
`
	p, err := Load("n.nft", src, Env{Interfaces: map[string]int{"r0": 0, "r1": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasNAT() {
		t.Fatal("HasNAT false")
	}
	pkt := pkt4(t, "198.51.100.2", "198.51.100.1", ProtoTCP, 40000, 8080)
	pkt.IIf = 1
	if r := p.EvalNAT(HookPrerouting, &pkt, nil, 0); r.NAT == 0 || p.NAT(r.NAT).String() != "dnat ip to 192.0.2.10:80" {
		t.Errorf("dnat: %+v", r)
	}
	// The filter hooks do not see NAT chains.
	if r := p.Eval(HookPrerouting, &pkt, nil, 0); r.NAT != 0 || r.Action != ActAccept {
		t.Errorf("Eval ran the nat chain: %+v", r)
	}
	out := pkt4(t, "192.0.2.5", "203.0.113.9", ProtoUDP, 5353, 53)
	out.IIf, out.OIf = 0, 1
	r := p.EvalNAT(HookPostrouting, &out, nil, 0)
	if r.NAT == 0 || p.NAT(r.NAT).Kind != NATMasquerade || p.NAT(r.NAT).String() != "masquerade random" {
		t.Errorf("masquerade: %+v", r)
	}
	other := pkt4(t, "198.51.100.9", "203.0.113.9", ProtoUDP, 5353, 53)
	other.OIf = 1
	if r := p.EvalNAT(HookPostrouting, &other, nil, 0); r.NAT != 0 {
		t.Errorf("no rule should match: %+v", r)
	}
	l := p.Listing()
	for _, want := range []string{"type nat hook prerouting priority dstnat; policy accept;", "snat ip to 198.51.100.7:20000-30000", "dnat ip to 192.0.2.11-192.0.2.12"} {
		if !strings.Contains(l, want) {
			t.Errorf("listing lacks %q:\n%s", want, l)
		}
	}
	if _, err := Load("n.nft", l, Env{Interfaces: map[string]int{"r0": 0, "r1": 1}}); err != nil {
		t.Errorf("listing does not parse back: %v", err)
	}
}
