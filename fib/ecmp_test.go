package fib

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func mustGroup(t *testing.T, hops ...Hop) *Group {
	t.Helper()
	g, err := NewGroup(hops...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGroupErrors(t *testing.T) {
	for name, hops := range map[string][]Hop{
		"empty":     nil,
		"no device": {{Via: ip("192.0.2.1"), Dev: -1}},
		"twice":     {{Via: ip("192.0.2.1"), Dev: 1}, {Via: ip("192.0.2.1"), Dev: 1, Weight: 3}},
		"mapped":    {{Via: ip("::ffff:192.0.2.1"), Dev: 1}},
		"too many":  make([]Hop, maxMembers+1),
	} {
		if _, err := NewGroup(hops...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	g := mustGroup(t, Hop{Via: ip("192.0.2.1"), Dev: 1}, Hop{Via: ip("192.0.2.2"), Dev: 1})
	f := New()
	for name, r := range map[string]Route{
		"with via":     {Prefix: pfx("10.0.0.0/8"), Group: g, Dev: -1, Via: ip("192.0.2.9")},
		"with dev":     {Prefix: pfx("10.0.0.0/8"), Group: g, Dev: 0},
		"blackhole":    {Prefix: pfx("10.0.0.0/8"), Group: g, Dev: -1, Type: Blackhole},
		"wrong family": {Prefix: pfx("2001:db8::/32"), Group: g, Dev: -1},
	} {
		if err := f.Add(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}

// share counts how many of n flow hashes each member gets.
func share(h *NextHop, n int) map[uint32]int {
	c := map[uint32]int{}
	rng := rand.New(rand.NewPCG(1, 1))
	for range n {
		p := h.Pick(FlowHash4(0, rng.Uint32(), rng.Uint32(), 6, uint16(rng.Uint32()), 443))
		c[p.Gateway]++
	}
	return c
}

func TestECMPWeightsAndResilience(t *testing.T) {
	a := Hop{Via: ip("192.0.2.1"), Dev: 1, Weight: 1}
	b := Hop{Via: ip("192.0.2.2"), Dev: 2, Weight: 3}
	c := Hop{Via: ip("192.0.2.3"), Dev: 3, Weight: 2}
	f := New()
	p := pfx("198.51.100.0/24")
	if err := f.Add(Route{Prefix: p, Group: mustGroup(t, c, a, b), Dev: -1}); err != nil {
		t.Fatal(err)
	}
	dst := u32("198.51.100.9")
	h := f.Lookup4(dst)
	if h == nil || h.Multi == nil || len(h.Multi.Hops) != 3 || h.Type != Unicast || h.Dev != 1 || h.Gateway != u32("192.0.2.1") {
		t.Fatalf("ECMP next hop %+v", h)
	}
	const n = 60000
	got := share(h, n)
	for hop, want := range map[Hop]float64{a: 1.0 / 6, b: 3.0 / 6, c: 2.0 / 6} {
		frac := float64(got[addr4(hop.Via)]) / n
		if frac < want*0.75 || frac > want*1.25 {
			t.Errorf("%v weight %d: %.3f of flows, want about %.3f", hop.Via, hop.Weight, frac, want)
		}
	}

	// Removing b moves only b's flows; a's and c's stay put.
	before := make([]*NextHop, 2000)
	hashes := make([]uint32, len(before))
	dsts := make([]uint32, len(before))
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range hashes {
		hashes[i] = FlowHash4(7, rng.Uint32(), dst, 17, uint16(i), 53)
		dsts[i] = dst
	}
	f.Lookup4FlowBatch(dsts, hashes, before)
	if err := f.Add(Route{Prefix: p, Group: mustGroup(t, a, c), Dev: -1, Metric: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(Route{Prefix: p, Dev: -1}); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i, hsh := range hashes {
		now := f.Lookup4Flow(dst, hsh)
		if now.Gateway == addr4(b.Via) {
			t.Fatalf("flow still on the removed next hop")
		}
		if before[i].Gateway != addr4(b.Via) && now.Gateway != before[i].Gateway {
			moved++
		}
		if single := f.Lookup4(dst).Pick(hsh); single != now {
			t.Fatalf("Pick and Lookup4Flow disagree")
		}
	}
	if moved != 0 {
		t.Errorf("%d flows not on the removed next hop moved", moved)
	}
}

func TestECMPShared6(t *testing.T) {
	f := New()
	g1 := mustGroup(t, Hop{Via: ip("2001:db8::1"), Dev: 1}, Hop{Via: ip("2001:db8::2"), Dev: 2})
	g2 := mustGroup(t, Hop{Via: ip("2001:db8::2"), Dev: 2}, Hop{Via: ip("2001:db8::1"), Dev: 1})
	for i, g := range []*Group{g1, g2} {
		if err := f.Add(Route{Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i + 1)}), 48), Group: g, Dev: -1}); err != nil {
			t.Fatal(err)
		}
	}
	h1, h2 := f.Lookup6(ip("2001:db8:1::1")), f.Lookup6(ip("2001:db8:2::1"))
	if h1 == nil || h1 != h2 || h1.Multi == nil {
		t.Fatalf("equal groups should share one next hop: %p %p", h1, h2)
	}
	seen := map[netip.Addr]int{}
	src := ip("2001:db8:ffff::1")
	for i := range 1000 {
		hsh := FlowHash6(0, src, ip("2001:db8:1::1"), 6, uint16(i), 80)
		m := f.Lookup6Flow(ip("2001:db8:1::1"), hsh)
		if m != f.Lookup6Flow(ip("2001:db8:1::1"), hsh) {
			t.Fatal("one flow took two paths")
		}
		seen[m.Gateway6]++
	}
	if seen[ip("2001:db8::1")] < 350 || seen[ip("2001:db8::2")] < 350 {
		t.Errorf("uneven spread over two equal next hops: %v", seen)
	}
	dst := []uint32{u32("192.0.2.1")}
	out := make([]*NextHop, 1)
	hs := []uint32{12345}
	if n := testing.AllocsPerRun(1000, func() {
		_ = f.Lookup6Flow(ip("2001:db8:1::1"), 99)
		f.Lookup4FlowBatch(dst, hs, out)
	}); n != 0 {
		t.Errorf("flow lookups allocate %v per run", n)
	}
}
