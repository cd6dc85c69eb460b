package fib

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// ref6 is the IPv6 model: every route by prefix, searched from /128 down.
type ref6 map[netip.Prefix][]Route

func (r ref6) lookup(a netip.Addr) (Route, bool) {
	for b := 128; b >= 0; b-- {
		p, _ := a.Prefix(b)
		if rs := r[p]; len(rs) > 0 {
			best := rs[0]
			for _, o := range rs[1:] {
				if o.Metric < best.Metric {
					best = o
				}
			}
			return best, true
		}
	}
	return Route{}, false
}

func same6(h *NextHop, rt Route, ok bool) bool {
	if !ok || h == nil {
		return !ok && h == nil
	}
	return h.Type == rt.Type && h.Dev == rt.Dev && h.Gateway6 == rt.Via && h.Gateway == 0
}

func check6(t *testing.T, f *FIB, r ref6, addrs []netip.Addr) {
	t.Helper()
	out := make([]*NextHop, len(addrs))
	f.Lookup6Batch(addrs, out)
	bad := 0
	for i, a := range addrs {
		want, ok := r.lookup(a)
		h := f.Lookup6(a)
		if !same6(h, want, ok) || out[i] != h {
			bad++
			if bad <= 5 {
				t.Errorf("%v: got %+v (batch %+v), want %v (found %v)", a, h, out[i], want, ok)
			}
		}
		if i%16 == 0 {
			g, gok := f.Get(a)
			if gok != ok || (ok && (g.Prefix != want.Prefix || g.Metric != want.Metric)) {
				bad++
				if bad <= 5 {
					t.Errorf("Get(%v) = %v, %v; want %v", a, g, gok, want)
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d mismatches in %d addresses", bad, len(addrs))
	}
}

// inside returns a random address inside p.
func inside(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	var x [16]byte
	for i := range x {
		x[i] = byte(rng.Uint32())
	}
	for i := range b {
		keep := max(0, min(8, p.Bits()-8*i))
		m := byte(0xff << (8 - keep))
		b[i] = b[i]&m | x[i]&^m
	}
	return netip.AddrFrom16(b)
}

func randRoute6(rng *rand.Rand) Route {
	bits := rng.IntN(129)
	if rng.IntN(2) == 0 {
		bits = 28 + rng.IntN(40)
	}
	base := pfx("2001:db8::/32")
	if rng.IntN(4) == 0 {
		base = pfx("2001:db8:42::/48")
	}
	p, _ := inside(rng, base).Prefix(bits)
	r := Route{Prefix: p, Metric: uint32(rng.IntN(3)), Dev: rng.IntN(4)}
	switch rng.IntN(5) {
	case 0:
		r.Type, r.Dev = Prohibit, -1
	case 1:
		r.Via = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(1 + rng.IntN(3))})
	}
	return r
}

func TestRandom6AgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	f, r := New(), ref6{}
	var live []Route
	probe := func() []netip.Addr {
		var as []netip.Addr
		for p := range r {
			as = append(as, p.Addr(), inside(rng, p), inside(rng, p))
		}
		for range 300 {
			as = append(as, inside(rng, pfx("2001:db8::/32")), inside(rng, pfx("2001:db8:42::/48")), inside(rng, pfx("::/0")))
		}
		return as
	}
	for step := range 3000 {
		switch x := rng.IntN(100); {
		case x < 55 || len(live) == 0:
			rt := randRoute6(rng)
			dup := false
			for _, o := range r[rt.Prefix] {
				dup = dup || o.Metric == rt.Metric
			}
			err := f.Add(rt)
			if dup != errors.Is(err, ErrExists) || (!dup && err != nil) {
				t.Fatalf("step %d: Add(%v) = %v, duplicate %v", step, rt, err, dup)
			}
			if err == nil {
				r[rt.Prefix] = append(r[rt.Prefix], rt)
				live = append(live, rt)
			}
		case x < 97:
			i := rng.IntN(len(live))
			rt := live[i]
			if err := f.Delete(Route{Prefix: rt.Prefix, Metric: rt.Metric, Dev: -1}); err != nil {
				t.Fatalf("step %d: Delete(%v): %v", step, rt, err)
			}
			rs := r[rt.Prefix]
			for j := range rs {
				if rs[j].Metric == rt.Metric {
					rs = append(rs[:j:j], rs[j+1:]...)
					break
				}
			}
			if len(rs) == 0 {
				delete(r, rt.Prefix)
			} else {
				r[rt.Prefix] = rs
			}
			live = append(live[:i], live[i+1:]...)
		default:
			if err := f.Replace(live); err != nil {
				t.Fatal(err)
			}
		}
		if step%250 == 0 {
			check6(t, f, r, probe())
			if t.Failed() {
				t.Fatalf("step %d", step)
			}
		}
	}
	check6(t, f, r, probe())
	if len(f.nh6) > 4*2*3+2 {
		t.Errorf("%d IPv6 next hops kept for at most %d distinct ones", len(f.nh6), 4*2*3+2)
	}
}

func TestMixedFamilies(t *testing.T) {
	f := New()
	for _, r := range []Route{
		{Prefix: pfx("0.0.0.0/0"), Dev: 1, Via: ip("192.0.2.1")},
		{Prefix: pfx("::/0"), Dev: 2, Via: ip("2001:db8::1")},
		{Prefix: pfx("2001:db8:1::/48"), Type: Unreachable, Dev: -1},
	} {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if h := f.Lookup4(u32("203.0.113.1")); h == nil || h.Dev != 1 || h.Gateway != u32("192.0.2.1") {
		t.Errorf("v4: %+v", h)
	}
	if h := f.Lookup6(ip("2001:db8:2::1")); h == nil || h.Dev != 2 || h.Gateway6 != ip("2001:db8::1") {
		t.Errorf("v6 default: %+v", h)
	}
	if h := f.Lookup6(ip("2001:db8:1::1")); h == nil || h.Type != Unreachable {
		t.Errorf("v6 unreachable: %+v", h)
	}
	if err := f.Delete(Route{Prefix: pfx("::/0"), Dev: -1}); err != nil {
		t.Fatal(err)
	}
	if h := f.Lookup6(ip("2001:db8:2::1")); h != nil {
		t.Errorf("v6 after delete: %+v", h)
	}
	if h := f.Lookup4(u32("203.0.113.1")); h == nil {
		t.Error("deleting ::/0 removed the IPv4 default")
	}
	dst := []netip.Addr{ip("2001:db8:1::1"), ip("2001:db8:2::1")}
	out := make([]*NextHop, 2)
	if n := testing.AllocsPerRun(1000, func() { _ = f.Lookup6(dst[0]) }); n != 0 {
		t.Errorf("Lookup6 allocates %v per run", n)
	}
	if n := testing.AllocsPerRun(1000, func() { f.Lookup6Batch(dst, out) }); n != 0 {
		t.Errorf("Lookup6Batch allocates %v per run", n)
	}
}

func fullRoutes6(ps []netip.Prefix) []Route {
	rs := make([]Route, len(ps))
	for i, p := range ps {
		b := p.Addr().As16()
		h := (uint32(b[2])<<8 | uint32(b[3]) ^ uint32(b[5])*31) % 4
		rs[i] = Route{Prefix: p, Dev: int(h), Via: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(h + 1)}), Proto: "bgp"}
	}
	return rs
}

func TestFullTable6(t *testing.T) {
	_, ps := fullTable(t)
	rs := fullRoutes6(ps)
	f, r := New(), ref6{}
	stride := 1
	if raceEnabled {
		stride = 16
	}
	for i, rt := range rs {
		if i%stride == 0 {
			if err := f.Add(rt); err != nil {
				t.Fatal(err)
			}
			r[rt.Prefix] = append(r[rt.Prefix], rt)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	var addrs []netip.Addr
	for i := 0; i < len(ps); i += stride {
		addrs = append(addrs, ps[i].Addr(), inside(rng, ps[i]))
	}
	for range 100_000 / stride {
		addrs = append(addrs, inside(rng, pfx("2000::/3")))
	}
	check6(t, f, r, addrs)
	g := New()
	if err := g.Replace(rs); err != nil {
		t.Fatal(err)
	}
	if stride == 1 {
		check6(t, g, r, addrs[:len(addrs)/4])
	}
}
