package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
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
			refDelete(r, rt)
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

// sameNode6 reports where two reader nodes differ structurally, comparing
// next hops by forwarding action, since separately built tables hold
// separate NextHop values.
func sameNode6(a, b *node6, at string) string {
	if a.kidBits != b.kidBits || a.runBits != b.runBits || a.kidBase != b.kidBase || a.runBase != b.runBase ||
		len(a.kids) != len(b.kids) || len(a.leaves) != len(b.leaves) {
		return at + ": bitmaps or sizes differ"
	}
	for i := range a.leaves {
		x, y := a.leaves[i], b.leaves[i]
		if (x == nil) != (y == nil) || (x != nil && key(x.Route) != key(y.Route)) {
			return fmt.Sprintf("%s: leaf %d: %v vs %v", at, i, x, y)
		}
	}
	for i := range a.kids {
		if d := sameNode6(&a.kids[i], &b.kids[i], fmt.Sprintf("%s/%d", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkShadow6 checks the writer's shadow trie: every node's count is its
// own routes plus its children's, and no node is empty.
func checkShadow6(t *testing.T, x *writer6) {
	t.Helper()
	var walk func(w *wnode) int
	walk = func(w *wnode) int {
		n := len(w.routes)
		if len(w.kids) != upTo(&w.kidBits, 255) {
			t.Fatalf("%d kids for %d kid bits", len(w.kids), upTo(&w.kidBits, 255))
		}
		for _, k := range w.kids {
			n += walk(k)
		}
		if n != w.n || n == 0 {
			t.Fatalf("shadow node counts %d, holds %d", w.n, n)
		}
		return n
	}
	for _, w := range x.kids {
		if w != nil {
			walk(w)
		}
	}
}

// TestTrie6Random drives the IPv6 trie with prefixes nested along a few
// addresses, at every stride boundary, /0 and /128 included, and a handful
// of next hops so that children fold into their parents and unfold again.
// After each step it checks lookups at and around every prefix's edges
// against the reference, and every few steps that the incrementally
// updated trie is exactly what building it afresh gives.
func TestTrie6Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	bases := []netip.Addr{inside(rng, pfx("2001:db8::/32")), inside(rng, pfx("2001:db8::/32")), inside(rng, pfx("::/0"))}
	lens := []int{0, 1, 7, 8, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40, 47, 48, 49, 64, 96, 119, 120, 121, 127, 128}
	f, r := New(), ref6{}
	var live []Route
	newRoute := func() Route {
		bits := lens[rng.IntN(len(lens))]
		if rng.IntN(4) == 0 {
			bits = rng.IntN(129)
		}
		p, _ := bases[rng.IntN(len(bases))].Prefix(bits)
		if rng.IntN(3) == 0 {
			// A sibling: flip the prefix's last bit.
			if bits > 0 {
				b := p.Addr().As16()
				b[(bits-1)/8] ^= 0x80 >> ((bits - 1) % 8)
				p = netip.PrefixFrom(netip.AddrFrom16(b), bits)
			}
		}
		dev := rng.IntN(2)
		return Route{Prefix: p, Metric: uint32(rng.IntN(2)), Dev: dev, Via: netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(dev + 1)})}
	}
	probe := func() []netip.Addr {
		var as []netip.Addr
		for p := range r {
			first := p.Addr()
			b := first.As16()
			for i := range b {
				b[i] |= ^byte(0xff << max(0, 8-max(0, p.Bits()-8*i)))
			}
			last := netip.AddrFrom16(b)
			as = append(as, first, last, inside(rng, p))
			if prev := first.Prev(); prev.IsValid() {
				as = append(as, prev)
			}
			if next := last.Next(); next.IsValid() {
				as = append(as, next)
			}
		}
		for range 50 {
			as = append(as, inside(rng, pfx("::/0")), inside(rng, netip.PrefixFrom(bases[rng.IntN(len(bases))], rng.IntN(129)).Masked()))
		}
		return as
	}
	steps := 4000
	if raceEnabled {
		steps = 800
	}
	for step := range steps {
		switch x := rng.IntN(100); {
		case x < 50 || len(live) == 0:
			rt := newRoute()
			dup := false
			for _, o := range r[rt.Prefix] {
				dup = dup || o.Metric == rt.Metric
			}
			if err := f.Add(rt); dup != errors.Is(err, ErrExists) || (!dup && err != nil) {
				t.Fatalf("step %d: Add(%v) = %v, duplicate %v", step, rt, err, dup)
			}
			if !dup {
				r[rt.Prefix] = append(r[rt.Prefix], rt)
				live = append(live, rt)
			}
		case x < 55:
			// Host bits are refused and must leave the table as it was.
			rt := newRoute()
			if rt.Prefix.Bits() == 128 {
				continue
			}
			b := rt.Prefix.Addr().As16()
			b[15] |= 1
			rt.Prefix = netip.PrefixFrom(netip.AddrFrom16(b), rt.Prefix.Bits())
			if err := f.Add(rt); !errors.Is(err, ErrInvalid) {
				t.Fatalf("step %d: Add(%v) with host bits = %v", step, rt, err)
			}
		case x < 97:
			i := rng.IntN(len(live))
			rt := live[i]
			if err := f.Delete(rt); err != nil {
				t.Fatalf("step %d: Delete(%v): %v", step, rt, err)
			}
			refDelete(r, rt)
			live = append(live[:i], live[i+1:]...)
		default:
			if err := f.Replace(live); err != nil {
				t.Fatal(err)
			}
		}
		check6(t, f, r, probe())
		if t.Failed() {
			t.Fatalf("step %d", step)
		}
		if step%50 == 0 && f.w6 != nil {
			checkShadow6(t, f.w6)
			g := New()
			if err := g.Replace(live); err != nil {
				t.Fatal(err)
			}
			a, b := f.v6.Load(), g.v6.Load()
			if b == nil {
				b = new(trie6)
				for s := range b.root {
					b.root[s].Store(f.w6.leaf(nil))
				}
			}
			for s := range a.root {
				if d := sameNode6(a.root[s].Load(), b.root[s].Load(), fmt.Sprintf("step %d root %04x", step, s)); d != "" {
					t.Fatal(d)
				}
			}
		}
	}
}

// TestConcurrentReaders6 runs lock-free IPv6 readers, single and batched,
// against a writer that adds, deletes, changes metrics of and replaces
// overlapping routes, from a /12 (which republishes the root) to a /128,
// and checks every answer is one the table could have given at some moment.
func TestConcurrentReaders6(t *testing.T) {
	f := New()
	with := func(p string, dev int, metric uint32) Route {
		return Route{Prefix: pfx(p), Dev: dev, Metric: metric, Via: netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(dev)})}
	}
	base := with("2001:db8::/32", 1, 0)
	if err := f.Add(base); err != nil {
		t.Fatal(err)
	}
	routes := []Route{
		with("2000::/12", 2, 0),
		with("2001:db8:1::/48", 3, 10),
		with("2001:db8:1:2::/64", 4, 10),
		with("2001:db8:1::/48", 5, 5),
		with("2001:db8:1:2::7/128", 6, 0),
		with("2001:db8:1:2::/63", 7, 0),
	}
	// Allowed devices per probe address; dev 0 stands for "no route".
	probes := []struct {
		a     netip.Addr
		allow map[int]bool
	}{
		{ip("2001:db8:1:2::7"), map[int]bool{1: true, 3: true, 4: true, 5: true, 6: true, 7: true}},
		{ip("2001:db8:1:2::8"), map[int]bool{1: true, 3: true, 4: true, 5: true, 7: true}},
		{ip("2001:db8:1:3::1"), map[int]bool{1: true, 3: true, 5: true, 7: true}},
		{ip("2001:db8:1:4::1"), map[int]bool{1: true, 3: true, 5: true}},
		{ip("2001:db8:2::1"), map[int]bool{1: true}},
		{ip("2001:db9::1"), map[int]bool{0: true, 2: true}},
		{ip("2010::1"), map[int]bool{0: true}},
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errc := make(chan string, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Enough addresses for the batch to use full lanes and a tail.
			var dst []netip.Addr
			for range 3 {
				for _, p := range probes {
					dst = append(dst, p.a)
				}
			}
			out := make([]*NextHop, len(dst))
			n := 0
			for !stop.Load() {
				if w == 1 {
					f.Lookup6Batch(dst, out)
				}
				for i, a := range dst {
					h := out[i]
					if w == 0 {
						h = f.Lookup6(a)
					}
					dev := 0
					if h != nil {
						dev = h.Dev
						if h.Gateway6 != netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(dev)}) || h.Type != Unicast {
							errc <- "inconsistent next hop"
							return
						}
					}
					if !probes[i%len(probes)].allow[dev] {
						errc <- fmt.Sprintf("forbidden dev %d for %v", dev, a)
						return
					}
					n++
				}
			}
			lookups.Add(int64(n))
		}()
	}
	rng := rand.New(rand.NewPCG(15, 16))
	churn(t, f, rng, base, routes)
	stop.Store(true)
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	t.Logf("%d concurrent lookups", lookups.Load())
}

// refDelete removes rt (by prefix and metric) from the reference model.
func refDelete(r map[netip.Prefix][]Route, rt Route) {
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
}
