package filter

import (
	"encoding/binary"
	"testing"
)

// FuzzParse: the parser and compiler never panic, and whatever compiles
// lists to text that compiles to the same listing.
func FuzzParse(f *testing.F) {
	f.Add(setRules)
	f.Add(chain("drop", "ct state established,related accept\ntcp flags syn / syn,ack limit rate 10/second accept"))
	f.Add("flush ruleset\ntable ip t { chain c { type filter hook input priority filter - 10; policy drop; icmp type { echo-request, 3 } accept } }")
	f.Add("table inet t { chain a { jump b }\n chain b { ip6 saddr != 2001:db8::/32 reject with icmpx type admin-prohibited } }")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Load("fuzz.nft", src, testEnv)
		if err != nil {
			return
		}
		l1 := p.Listing()
		p2, err := Load("listed.nft", l1, testEnv)
		if err != nil {
			t.Fatalf("listing does not load: %v\n%s", err, l1)
		}
		if l2 := p2.Listing(); l2 != l1 {
			t.Fatalf("listing changed:\n%s\nthen\n%s", l1, l2)
		}
	})
}

const fuzzRuleset = `table inet t {
 set s4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/28, 198.51.100.2, 203.0.113.0-203.0.113.9 } }
 set s6 { type ipv6_addr; flags interval; elements = { 2001:db8:1::/48, 2001:db8::1 } }
 set ports { type inet_service; flags interval; elements = { 22, 1000-1003 } }
 chain u2 { tcp dport 22 ip saddr @s4 accept; meta mark set 2 return; drop }
 chain u1 { iifname "r*" udp dport { 53, 123 } goto u2; icmp type echo-request jump u2; ip6 daddr @s6 reject }
 chain f1 {
  type filter hook forward priority 0; policy accept;
  ct state established,related accept
  ct state invalid drop
  tcp flags syn / syn,ack tcp dport @ports jump u1
  th dport != { 80, 443 } meta l4proto udp counter drop
  ip daddr != 198.51.100.0/24 oif "r1" jump u1
  meta length > 1000 ip dscp ef ct mark set 5 reject with icmpx type host-unreachable
 }
 chain f2 {
  type filter hook forward priority -5; policy drop;
  meta mark 0 tcp dport 1-1024 accept
  udp sport 53 accept
  ip6 nexthdr icmpv6 icmpv6 type { echo-request, echo-reply } accept
  tcp flags & (fin|rst) != 0 accept
  iif { "r0", "r2" } goto u1
 }
}`

// FuzzEval: random packets through a fixed ruleset: the indexed program
// agrees with the syntax-tree interpreter.
func FuzzEval(f *testing.F) {
	idx, err := Load("fuzz.nft", fuzzRuleset, testEnv)
	if err != nil {
		f.Fatal(err)
	}
	ref := &naive{rs: idx.rs, env: testEnv}
	f.Add(make([]byte, 64))
	seed := make([]byte, 64)
	seed[0], seed[1], seed[36], seed[37] = 4, ProtoTCP, 22, 1
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 64 {
			b = append(b, make([]byte, 64-len(b))...)
		}
		var p Packet
		p.Family = 4 + 2*(b[0]&1)
		p.L4Proto = b[1]
		copy(p.Src[:], b[2:18])
		copy(p.Dst[:], b[18:34])
		if p.Family == 4 {
			for _, a := range []*[16]byte{&p.Src, &p.Dst} {
				copy(a[:12], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
			}
		}
		p.SrcPort = binary.BigEndian.Uint16(b[34:])
		p.DstPort = binary.BigEndian.Uint16(b[36:])
		p.HasPorts = b[38]&1 == 0
		p.ICMPType, p.ICMPCode, p.TCPFlags = b[39], b[40], b[41]
		p.Length = uint32(binary.BigEndian.Uint16(b[42:]))
		p.Mark = uint32(b[44] & 3)
		p.CtMark = uint32(b[45] & 7)
		p.DSCP = b[46] & 63
		p.CtState = 1 << (b[47] % 5)
		p.IIf = int(b[48]%7) - 1
		p.OIf = int(b[49]%7) - 1
		x, y := p, p
		got := idx.Eval(HookForward, &x, nil, 0)
		want := ref.eval(HookForward, &y)
		if got != want {
			t.Fatalf("packet %+v: indexed %+v, naive %+v", p, got, want)
		}
	})
}
