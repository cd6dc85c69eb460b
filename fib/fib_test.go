package fib

import (
	"bufio"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func u32(s string) uint32       { return addr4(ip(s)) }

func mask(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func prefixOf(a uint32, bits int) netip.Prefix {
	a &= mask(bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits)
}

// ref is the obviously-correct model: one map per prefix length holding
// every route, searched from /32 down.
type ref struct {
	m [33]map[uint32][]Route
}

func newRef() *ref {
	r := &ref{}
	for i := range r.m {
		r.m[i] = make(map[uint32][]Route)
	}
	return r
}

func (r *ref) add(rt Route) {
	k := addr4(rt.Prefix.Addr())
	r.m[rt.Prefix.Bits()][k] = append(r.m[rt.Prefix.Bits()][k], rt)
}

func (r *ref) del(p netip.Prefix, metric uint32) {
	k := addr4(p.Addr())
	rs := r.m[p.Bits()][k]
	for i, o := range rs {
		if o.Metric == metric {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(r.m[p.Bits()], k)
	} else {
		r.m[p.Bits()][k] = rs
	}
}

func (r *ref) lookup(a uint32) (Route, bool) {
	for b := 32; b >= 0; b-- {
		if rs := r.m[b][a&mask(b)]; len(rs) > 0 {
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

// same reports whether h forwards as rt does.
func same(h *NextHop, rt Route, ok bool) bool {
	if !ok || h == nil {
		return !ok && h == nil
	}
	var gw uint32
	if rt.Via.IsValid() {
		gw = addr4(rt.Via)
	}
	return h.Type == rt.Type && h.Dev == rt.Dev && h.Gateway == gw &&
		h.Route != nil && h.Route.Type == rt.Type && h.Route.Dev == rt.Dev && h.Route.Via == rt.Via
}

func check(t *testing.T, f *FIB, r *ref, addrs []uint32) {
	t.Helper()
	out := make([]*NextHop, len(addrs))
	f.Lookup4Batch(addrs, out)
	bad := 0
	for i, a := range addrs {
		want, ok := r.lookup(a)
		h := f.Lookup4(a)
		if !same(h, want, ok) || out[i] != h {
			bad++
			if bad <= 5 {
				t.Errorf("%v: got %+v (batch %+v), want %v (found %v)", prefixOf(a, 32).Addr(), h, out[i], want, ok)
			}
		}
		if ok && i%16 == 0 {
			if g, gok := f.Get(prefixOf(a, 32).Addr()); !gok || g.Prefix.Bits() < want.Prefix.Bits() || g.Metric != want.Metric || g.Prefix != want.Prefix {
				bad++
				if bad <= 5 {
					t.Errorf("Get(%v) = %v, %v; want %v", prefixOf(a, 32).Addr(), g, gok, want)
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d mismatches in %d addresses", bad, len(addrs))
	}
}

func TestRouteTypeString(t *testing.T) {
	for typ, s := range map[RouteType]string{Unicast: "unicast", Local: "local", Blackhole: "blackhole",
		Unreachable: "unreachable", Prohibit: "prohibit", 9: "RouteType(9)"} {
		if typ.String() != s {
			t.Errorf("%d.String() = %q, want %q", typ, typ.String(), s)
		}
	}
}

func TestEmpty(t *testing.T) {
	f := New()
	if h := f.Lookup4(u32("192.0.2.1")); h != nil {
		t.Fatalf("empty FIB returned %+v", h)
	}
	out := []*NextHop{{}, {}}
	f.Lookup4Batch([]uint32{1, 2}, out)
	if out[0] != nil || out[1] != nil {
		t.Fatalf("empty FIB batch returned %+v", out)
	}
}

func TestBasic(t *testing.T) {
	f := New()
	add := func(r Route) {
		t.Helper()
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	add(Route{Prefix: pfx("192.0.2.0/24"), Dev: 1, Proto: "connected"})
	add(Route{Prefix: pfx("192.0.2.1/32"), Type: Local, Dev: 1, Proto: "local"})
	add(Route{Prefix: pfx("0.0.0.0/0"), Via: ip("192.0.2.254"), Dev: 1, Proto: "static"})
	add(Route{Prefix: pfx("198.51.100.0/24"), Type: Blackhole, Dev: -1})
	add(Route{Prefix: pfx("198.51.100.128/25"), Type: Unreachable, Dev: -1})
	add(Route{Prefix: pfx("198.51.100.200/30"), Type: Prohibit, Dev: -1})
	for _, c := range []struct {
		dst string
		typ RouteType
		dev int
		gw  string
	}{
		{"192.0.2.7", Unicast, 1, ""},
		{"192.0.2.1", Local, 1, ""},
		{"203.0.113.9", Unicast, 1, "192.0.2.254"},
		{"198.51.100.1", Blackhole, -1, ""},
		{"198.51.100.129", Unreachable, -1, ""},
		{"198.51.100.202", Prohibit, -1, ""},
		{"198.51.100.204", Unreachable, -1, ""},
	} {
		h := f.Lookup4(u32(c.dst))
		var gw uint32
		if c.gw != "" {
			gw = u32(c.gw)
		}
		if h == nil || h.Type != c.typ || h.Dev != c.dev || h.Gateway != gw {
			t.Errorf("%s: got %+v, want %v dev %d gw %s", c.dst, h, c.typ, c.dev, c.gw)
		}
	}
	rs := f.Routes()
	var got []string
	for _, r := range rs {
		got = append(got, r.Prefix.String())
	}
	want := []string{"0.0.0.0/0", "192.0.2.0/24", "192.0.2.1/32", "198.51.100.0/24", "198.51.100.128/25", "198.51.100.200/30"}
	if len(got) != len(want) {
		t.Fatalf("Routes() = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("Routes() = %v, want %v", got, want)
		}
	}
	// Deleting the /25 returns its /30 neighbours to the /24.
	if err := f.Delete(Route{Prefix: pfx("198.51.100.128/25"), Dev: -1}); err != nil {
		t.Fatal(err)
	}
	if h := f.Lookup4(u32("198.51.100.129")); h == nil || h.Type != Blackhole {
		t.Errorf("after delete: got %+v, want blackhole", h)
	}
	if h := f.Lookup4(u32("198.51.100.201")); h == nil || h.Type != Prohibit {
		t.Errorf("after delete: got %+v, want prohibit", h)
	}
	if err := f.Delete(Route{Prefix: pfx("0.0.0.0/0"), Dev: -1}); err != nil {
		t.Fatal(err)
	}
	if h := f.Lookup4(u32("203.0.113.9")); h != nil {
		t.Errorf("after deleting default: got %+v, want nil", h)
	}
}

func TestMetricTakeover(t *testing.T) {
	f := New()
	p := pfx("203.0.113.0/24")
	r1 := Route{Prefix: p, Via: ip("192.0.2.1"), Dev: 1, Metric: 100}
	r2 := Route{Prefix: p, Via: ip("192.0.2.2"), Dev: 2, Metric: 50}
	r3 := Route{Prefix: p, Via: ip("192.0.2.3"), Dev: 3, Metric: 200}
	gw := func() uint32 {
		h := f.Lookup4(u32("203.0.113.77"))
		if h == nil {
			return 0
		}
		return h.Gateway
	}
	for _, r := range []Route{r1, r2, r3} {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if gw() != u32("192.0.2.2") {
		t.Fatalf("best metric not used: gw %x", gw())
	}
	if err := f.Delete(r2); err != nil {
		t.Fatal(err)
	}
	if gw() != u32("192.0.2.1") {
		t.Fatalf("metric 100 did not take over: gw %x", gw())
	}
	if err := f.Delete(r1); err != nil {
		t.Fatal(err)
	}
	if gw() != u32("192.0.2.3") {
		t.Fatalf("metric 200 did not take over: gw %x", gw())
	}
	if err := f.Add(r2); err != nil {
		t.Fatal(err)
	}
	if gw() != u32("192.0.2.2") {
		t.Fatalf("better metric added later not used: gw %x", gw())
	}
	if err := f.Delete(r3); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(r2); err != nil {
		t.Fatal(err)
	}
	if gw() != 0 || f.Len() != 0 {
		t.Fatalf("routes left: gw %x, %d prefixes", gw(), f.Len())
	}
}

func TestErrors(t *testing.T) {
	f := New()
	r := Route{Prefix: pfx("198.51.100.0/24"), Via: ip("192.0.2.1"), Dev: 1, Metric: 10}
	if err := f.Add(r); err != nil {
		t.Fatal(err)
	}
	dup := r
	dup.Via = ip("192.0.2.9")
	if err := f.Add(dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate prefix+metric: err %v, want ErrExists", err)
	}
	for _, d := range []Route{
		{Prefix: pfx("198.51.100.0/24"), Metric: 11, Dev: -1},                       // wrong metric
		{Prefix: pfx("198.51.100.0/25"), Metric: 10, Dev: -1},                       // wrong prefix
		{Prefix: pfx("198.51.100.0/24"), Metric: 10, Dev: -1, Via: ip("192.0.2.2")}, // wrong gateway
		{Prefix: pfx("198.51.100.0/24"), Metric: 10, Dev: 2},                        // wrong device
		{Prefix: pfx("203.0.113.0/24"), Dev: -1},                                    // nothing there
	} {
		if err := f.Delete(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%v): err %v, want ErrNotFound", d, err)
		}
	}
	for _, bad := range []Route{
		{Prefix: pfx("198.51.100.1/24"), Dev: 1}, // host bits
		{Dev: 1},                                 // no prefix
		{Prefix: pfx("::ffff:192.0.2.0/120"), Dev: 1},                    // v4-mapped
		{Prefix: pfx("2001:db8::/32"), Dev: 1, Via: ip("192.0.2.1")},     // v4 gateway
		{Prefix: pfx("198.51.100.0/24"), Dev: -1},                        // unicast without device
		{Prefix: pfx("198.51.100.0/24"), Dev: 1, Via: ip("2001:db8::1")}, // v6 gateway
		{Prefix: pfx("198.51.100.0/24"), Type: Blackhole, Dev: -1, Via: ip("192.0.2.1")},
		{Prefix: pfx("198.51.100.0/24"), Type: 42, Dev: -1},
	} {
		if err := f.Add(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%+v): err %v, want ErrInvalid", bad, err)
		}
	}
	if err := f.Replace([]Route{r, dup}); !errors.Is(err, ErrExists) {
		t.Errorf("Replace with duplicate: err %v, want ErrExists", err)
	}
	if err := f.Replace([]Route{{Prefix: pfx("10.0.0.0/8"), Dev: 1}, {Prefix: pfx("10.0.0.1/8"), Dev: 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Replace with invalid: err %v, want ErrInvalid", err)
	}
	// Failed replaces leave the table as it was.
	if rs := f.Routes(); len(rs) != 1 || rs[0] != r {
		t.Errorf("after failed replaces: %v", rs)
	}
	if err := f.Delete(r); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(r); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: err %v, want ErrNotFound", err)
	}
}

// randRoute draws a route inside a few /12s so that prefixes nest and
// collide often, with lengths spread over 8..32.
func randRoute(rng *rand.Rand) Route {
	bases := []uint32{0x0a000000, 0xc0000200, 0xc6336400, 0x64400000}
	bits := 8 + rng.IntN(25)
	if rng.IntN(3) == 0 {
		bits = 20 + rng.IntN(13) // plenty of tbl8 work
	}
	a := bases[rng.IntN(len(bases))] ^ rng.Uint32()&0x000fffff
	r := Route{Prefix: prefixOf(a, bits), Metric: uint32(rng.IntN(3)), Dev: rng.IntN(4)}
	switch rng.IntN(6) {
	case 0:
		r.Type = Blackhole
		r.Dev = -1
	case 1:
		r.Type = Unreachable
		r.Dev = -1
	case 2:
		r.Via = prefixOf(0xc0000200|rng.Uint32()&3, 32).Addr()
	}
	return r
}

func probes(rng *rand.Rand, r *ref, n int) []uint32 {
	var out []uint32
	for b := range r.m {
		for k := range r.m[b] {
			out = append(out, k, k|^mask(b), k|rng.Uint32()&^mask(b), k-1, (k|^mask(b))+1)
		}
	}
	for range n {
		out = append(out, rng.Uint32(), 0x0a000000|rng.Uint32()&0xfffff, 0xc0000200|rng.Uint32()&0xff)
	}
	return out
}

func TestRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f, r := New(), newRef()
	var live []Route
	steps := 4000
	if testing.Short() || raceEnabled {
		steps = 1000
	}
	for step := range steps {
		switch x := rng.IntN(100); {
		case x < 55 || len(live) == 0:
			rt := randRoute(rng)
			err := f.Add(rt)
			_, dup := r.has(rt)
			if dup != errors.Is(err, ErrExists) || (!dup && err != nil) {
				t.Fatalf("step %d: Add(%v) = %v, duplicate %v", step, rt, err, dup)
			}
			if err == nil {
				r.add(rt)
				live = append(live, rt)
			}
		case x < 97:
			i := rng.IntN(len(live))
			rt := live[i]
			d := Route{Prefix: rt.Prefix, Metric: rt.Metric, Dev: -1}
			if rng.IntN(2) == 0 {
				d = rt
			}
			if err := f.Delete(d); err != nil {
				t.Fatalf("step %d: Delete(%v): %v", step, d, err)
			}
			r.del(rt.Prefix, rt.Metric)
			live = append(live[:i], live[i+1:]...)
			if err := f.Delete(d); !errors.Is(err, ErrNotFound) {
				t.Fatalf("step %d: second Delete(%v): %v", step, d, err)
			}
		default:
			if err := f.Replace(live); err != nil {
				t.Fatalf("step %d: Replace: %v", step, err)
			}
		}
		if step%200 == 0 {
			check(t, f, r, probes(rng, r, 200))
			if t.Failed() {
				t.Fatalf("step %d", step)
			}
		}
	}
	check(t, f, r, probes(rng, r, 2000))
	if got := len(f.Routes()); got != len(live) {
		t.Errorf("Routes() has %d, want %d", got, len(live))
	}
}

func (r *ref) has(rt Route) (Route, bool) {
	for _, o := range r.m[rt.Prefix.Bits()][addr4(rt.Prefix.Addr())] {
		if o.Metric == rt.Metric {
			return o, true
		}
	}
	return Route{}, false
}

// TestChurnRebuild drives enough tbl8 and next-hop churn to force several
// compacting rebuilds and checks the table stays right across them.
func TestChurnRebuild(t *testing.T) {
	f, r := New(), newRef()
	base := Route{Prefix: pfx("10.0.0.0/8"), Dev: 0}
	if err := f.Add(base); err != nil {
		t.Fatal(err)
	}
	r.add(base)
	rng := rand.New(rand.NewPCG(3, 4))
	first := f.gen.Load()
	for i := range 3000 {
		rt := Route{Prefix: prefixOf(0x0a000000|uint32(i)<<8|uint32(rng.IntN(256)), 25+rng.IntN(8)),
			Dev: 1, Via: prefixOf(uint32(0xc0000000+i), 32).Addr()}
		if err := f.Add(rt); err != nil {
			t.Fatal(err)
		}
		if h := f.Lookup4(addr4(rt.Prefix.Addr())); h == nil || h.Gateway != addr4(rt.Via) {
			t.Fatalf("%v not installed: %+v", rt, h)
		}
		if err := f.Delete(rt); err != nil {
			t.Fatal(err)
		}
	}
	if f.gen.Load() == first {
		t.Error("3000 group and next-hop frees did not trigger a rebuild")
	}
	check(t, f, r, probes(rng, r, 5000))
}

// TestConcurrentReaders runs lock-free readers against a writer that adds,
// deletes, changes metrics and replaces the table, and checks each answer
// is one the table could have given at some moment.
func TestConcurrentReaders(t *testing.T) {
	f := New()
	nh := func(dev int) Route {
		return Route{Dev: dev, Via: prefixOf(0xc0000200|uint32(dev), 32).Addr()}
	}
	with := func(p string, dev int, metric uint32) Route {
		r := nh(dev)
		r.Prefix, r.Metric = pfx(p), metric
		return r
	}
	base := with("10.0.0.0/8", 1, 0)
	if err := f.Add(base); err != nil {
		t.Fatal(err)
	}
	// Allowed devices per probe address; dev 0 stands for "no route".
	probes := []struct {
		a     uint32
		allow map[int]bool
	}{
		{u32("10.1.2.200"), map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true}},
		{u32("10.1.3.1"), map[int]bool{1: true, 2: true, 4: true}},
		{u32("10.2.0.1"), map[int]bool{1: true}},
		{u32("11.0.0.1"), map[int]bool{0: true}},
		{u32("10.1.2.1"), map[int]bool{1: true, 2: true, 4: true}},
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errc := make(chan string, 4)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]uint32, len(probes))
			for i := range probes {
				dst[i] = probes[i].a
			}
			out := make([]*NextHop, len(dst))
			n := 0
			for !stop.Load() {
				for i, p := range probes {
					h := f.Lookup4(p.a)
					if w == 1 {
						if i == 0 {
							f.Lookup4Batch(dst, out)
						}
						h = out[i]
					}
					dev := 0
					if h != nil {
						dev = h.Dev
						if h.Gateway != 0xc0000200|uint32(dev) || h.Type != Unicast {
							errc <- "inconsistent next hop"
							return
						}
					}
					if !p.allow[dev] {
						errc <- "forbidden next hop for " + prefixOf(p.a, 32).Addr().String()
						return
					}
					n++
				}
			}
			lookups.Add(int64(n))
		}()
	}
	rng := rand.New(rand.NewPCG(5, 6))
	routes := []Route{
		with("10.1.0.0/16", 2, 10),
		with("10.1.2.128/25", 3, 10),
		with("10.1.0.0/16", 4, 5),
		with("10.1.2.192/26", 5, 0),
	}
	churn(t, f, rng, base, routes)
	stop.Store(true)
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	t.Logf("%d concurrent lookups", lookups.Load())
}

func TestAllocs(t *testing.T) {
	f := New()
	for _, r := range []Route{
		{Prefix: pfx("0.0.0.0/0"), Dev: 0, Via: ip("192.0.2.1")},
		{Prefix: pfx("198.51.100.0/24"), Dev: 1},
		{Prefix: pfx("198.51.100.64/26"), Dev: 2},
	} {
		if err := f.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	dst := []uint32{u32("198.51.100.70"), u32("198.51.100.1"), u32("203.0.113.1"), u32("1.2.3.4")}
	out := make([]*NextHop, len(dst))
	if n := testing.AllocsPerRun(1000, func() { _ = f.Lookup4(dst[0]) }); n != 0 {
		t.Errorf("Lookup4 allocates %v per run", n)
	}
	if n := testing.AllocsPerRun(1000, func() { f.Lookup4Batch(dst, out) }); n != 0 {
		t.Errorf("Lookup4Batch allocates %v per run", n)
	}
	if out[0].Dev != 2 || out[1].Dev != 1 || out[2].Dev != 0 {
		t.Errorf("batch results %+v %+v %+v", out[0], out[1], out[2])
	}
}

// tableFile finds shared/data/bgp-full-table-prefixes.txt.gz by walking up
// from the working directory.
func tableFile(tb testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data", "bgp-full-table-prefixes.txt.gz")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Skip("shared/data/bgp-full-table-prefixes.txt.gz not found above the working directory")
		}
		dir = up
	}
}

var (
	tableOnce sync.Once
	table4    []netip.Prefix
	table6    []netip.Prefix
	tableErr  error
)

// fullTable returns the IPv4 and IPv6 prefixes of the shared full table.
func fullTable(tb testing.TB) ([]netip.Prefix, []netip.Prefix) {
	path := tableFile(tb)
	tableOnce.Do(func() {
		fh, err := os.Open(path)
		if err != nil {
			tableErr = err
			return
		}
		defer fh.Close()
		zr, err := gzip.NewReader(fh)
		if err != nil {
			tableErr = err
			return
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			p, err := netip.ParsePrefix(sc.Text())
			if err != nil {
				tableErr = err
				return
			}
			p = p.Masked()
			if p.Addr().Is4() {
				table4 = append(table4, p)
			} else {
				table6 = append(table6, p)
			}
		}
		tableErr = sc.Err()
	})
	if tableErr != nil {
		tb.Fatal(tableErr)
	}
	return table4, table6
}

// fullRoutes gives each prefix one of a handful of next hops, as a router
// with a few upstreams would have, chosen by a hash of the prefix.
func fullRoutes(ps []netip.Prefix) []Route {
	rs := make([]Route, len(ps))
	for i, p := range ps {
		h := addr4(p.Addr())*2654435761 ^ uint32(p.Bits())
		dev := int(h>>28) % 4
		rs[i] = Route{Prefix: p, Dev: dev, Via: prefixOf(0xc0000200|uint32(dev+1), 32).Addr(), Proto: "bgp"}
		if h%97 == 0 {
			rs[i] = Route{Prefix: p, Type: Blackhole, Dev: -1, Proto: "bgp"}
		}
	}
	return rs
}

func TestFullTable(t *testing.T) {
	ps, _ := fullTable(t)
	rs := fullRoutes(ps)
	f, r := New(), newRef()
	// Under the race detector the table is loaded in one Replace and
	// checked at every 16th prefix, to keep the run to tens of seconds.
	stride := 1
	if raceEnabled {
		stride = 16
		if err := f.Replace(rs); err != nil {
			t.Fatal(err)
		}
	}
	for _, rt := range rs {
		if !raceEnabled {
			if err := f.Add(rt); err != nil {
				t.Fatal(err)
			}
		}
		r.add(rt)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	// Every prefix: first, last and a random address inside, and the
	// neighbours just outside; then random addresses anywhere.
	var addrs []uint32
	for i := 0; i < len(ps); i += stride {
		p := ps[i]
		a, b := addr4(p.Addr()), p.Bits()
		addrs = append(addrs, a, a|^mask(b), a|rng.Uint32()&^mask(b), a-1, (a|^mask(b))+1)
	}
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	for range n {
		addrs = append(addrs, rng.Uint32())
	}
	check(t, f, r, addrs)

	// Replace builds the same table aside.
	g := New()
	if err := g.Replace(rs); err != nil {
		t.Fatal(err)
	}
	check(t, g, r, addrs[:len(addrs)/4])

	// Delete a random tenth and check again.
	for _, i := range rng.Perm(len(rs))[:len(rs)/10/stride] {
		if err := f.Delete(rs[i]); err != nil {
			t.Fatal(err)
		}
		r.del(rs[i].Prefix, rs[i].Metric)
	}
	check(t, f, r, addrs)
}

// churn is the writer side of the concurrency tests: random adds and
// deletes of routes, and now and then a Replace with a random subset,
// always keeping base.
func churn(t *testing.T, f *FIB, rng *rand.Rand, base Route, routes []Route) {
	t.Helper()
	in := make([]bool, len(routes))
	iters := 2000
	if testing.Short() {
		iters = 500
	}
	for range iters {
		i := rng.IntN(len(routes) + 1)
		if i == len(routes) && rng.IntN(8) == 0 {
			set := []Route{base}
			for j := range routes {
				if in[j] = rng.IntN(2) == 0; in[j] {
					set = append(set, routes[j])
				}
			}
			if err := f.Replace(set); err != nil {
				t.Fatal(err)
			}
			continue
		}
		i %= len(routes)
		var err error
		if in[i] {
			err = f.Delete(routes[i])
		} else {
			err = f.Add(routes[i])
		}
		if err != nil {
			t.Fatal(err)
		}
		in[i] = !in[i]
	}
}
