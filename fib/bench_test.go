package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/gaissmai/bart"
)

// The benchmarks load the shared full table once and look up the same
// destinations in ferry's FIB and in bart: random addresses inside random
// table prefixes, so every lookup hits, as forwarded traffic mostly does.

const benchDsts = 1 << 20

var (
	benchOnce sync.Once
	benchFIB  *FIB
	benchBart *bart.Table[*NextHop]
	bench4    []uint32
	bench4a   []netip.Addr
)

func benchSetup(b *testing.B) {
	ps, _ := fullTable(b)
	benchOnce.Do(func() {
		rs := fullRoutes(ps)
		benchFIB = New()
		if err := benchFIB.Replace(rs); err != nil {
			b.Fatal(err)
		}
		benchBart = new(bart.Table[*NextHop])
		for _, r := range rs {
			benchBart.Insert(r.Prefix, benchFIB.Lookup4(addr4(r.Prefix.Addr())))
		}
		rng := rand.New(rand.NewPCG(42, 42))
		bench4 = make([]uint32, benchDsts)
		bench4a = make([]netip.Addr, benchDsts)
		for i := range bench4 {
			p := ps[rng.IntN(len(ps))]
			a := addr4(p.Addr()) | rng.Uint32()&^mask(p.Bits())
			bench4[i] = a
			bench4a[i] = prefixOf(a, 32).Addr()
		}
	})
}

var sinkNH *NextHop

func BenchmarkLookup4(b *testing.B) {
	benchSetup(b)
	f := benchFIB
	var h *NextHop
	b.ResetTimer()
	for i := range b.N {
		h = f.Lookup4(bench4[i&(benchDsts-1)])
	}
	sinkNH = h
}

func BenchmarkLookup4Batch(b *testing.B) {
	benchSetup(b)
	f := benchFIB
	const batch = 64
	out := make([]*NextHop, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		j := i & (benchDsts - 1)
		f.Lookup4Batch(bench4[j:j+batch], out)
	}
	sinkNH = out[0]
}

func BenchmarkBartLookup4(b *testing.B) {
	benchSetup(b)
	t := benchBart
	var h *NextHop
	b.ResetTimer()
	for i := range b.N {
		h, _ = t.Lookup(bench4a[i&(benchDsts-1)])
	}
	sinkNH = h
}

// BenchmarkLoad4Replace builds the full IPv4 table aside and swaps it in.
func BenchmarkLoad4Replace(b *testing.B) {
	ps, _ := fullTable(b)
	rs := fullRoutes(ps)
	b.ResetTimer()
	for range b.N {
		if err := New().Replace(rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rs)), "prefixes")
}

// BenchmarkLoad4Add adds the full IPv4 table one route at a time, as live
// updates would.
func BenchmarkLoad4Add(b *testing.B) {
	ps, _ := fullTable(b)
	rs := fullRoutes(ps)
	b.ResetTimer()
	for range b.N {
		f := New()
		for _, r := range rs {
			if err := f.Add(r); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkBartLoad4(b *testing.B) {
	ps, _ := fullTable(b)
	b.ResetTimer()
	for range b.N {
		t := new(bart.Table[*NextHop])
		for _, p := range ps {
			t.Insert(p, nil)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory4 reports heap bytes per prefix for the full IPv4 table in
// ferry's FIB (RIB and forwarding tables, tbl24 included) and in bart.
func BenchmarkMemory4(b *testing.B) {
	ps, _ := fullTable(b)
	rs := fullRoutes(ps)
	for range b.N {
		before := heapInUse()
		f := New()
		if err := f.Replace(rs); err != nil {
			b.Fatal(err)
		}
		mid := heapInUse()
		t := new(bart.Table[*NextHop])
		for _, p := range ps {
			t.Insert(p, nil)
		}
		after := heapInUse()
		b.ReportMetric(float64(mid-before)/float64(len(ps)), "ferry-B/prefix")
		b.ReportMetric(float64(after-mid)/float64(len(ps)), "bart-B/prefix")
		runtime.KeepAlive(f)
		runtime.KeepAlive(t)
	}
}

var (
	bench6Once sync.Once
	bench6FIB  *FIB
	bench6Bart *bart.Table[*NextHop]
	bench6     []netip.Addr
)

func bench6Setup(b *testing.B) {
	_, ps := fullTable(b)
	bench6Once.Do(func() {
		rs := fullRoutes6(ps)
		bench6FIB = New()
		if err := bench6FIB.Replace(rs); err != nil {
			b.Fatal(err)
		}
		bench6Bart = new(bart.Table[*NextHop])
		for _, r := range rs {
			bench6Bart.Insert(r.Prefix, bench6FIB.Lookup6(r.Prefix.Addr()))
		}
		rng := rand.New(rand.NewPCG(42, 43))
		bench6 = make([]netip.Addr, benchDsts)
		for i := range bench6 {
			bench6[i] = inside(rng, ps[rng.IntN(len(ps))])
		}
	})
}

func BenchmarkLookup6(b *testing.B) {
	bench6Setup(b)
	f := bench6FIB
	var h *NextHop
	b.ResetTimer()
	for i := range b.N {
		h = f.Lookup6(bench6[i&(benchDsts-1)])
	}
	sinkNH = h
}

func BenchmarkLookup6Batch(b *testing.B) {
	bench6Setup(b)
	f := bench6FIB
	const batch = 64
	out := make([]*NextHop, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		j := i & (benchDsts - 1)
		f.Lookup6Batch(bench6[j:j+batch], out)
	}
	sinkNH = out[0]
}

func BenchmarkBartLookup6(b *testing.B) {
	bench6Setup(b)
	t := bench6Bart
	var h *NextHop
	b.ResetTimer()
	for i := range b.N {
		h, _ = t.Lookup(bench6[i&(benchDsts-1)])
	}
	sinkNH = h
}

func BenchmarkLoad6Replace(b *testing.B) {
	_, ps := fullTable(b)
	rs := fullRoutes6(ps)
	b.ResetTimer()
	for range b.N {
		if err := New().Replace(rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rs)), "prefixes")
}

func BenchmarkMemory6(b *testing.B) {
	_, ps := fullTable(b)
	rs := fullRoutes6(ps)
	for range b.N {
		before := heapInUse()
		f := New()
		if err := f.Replace(rs); err != nil {
			b.Fatal(err)
		}
		mid := heapInUse()
		t := new(bart.Table[*NextHop])
		for _, p := range ps {
			t.Insert(p, nil)
		}
		after := heapInUse()
		b.ReportMetric(float64(mid-before)/float64(len(ps)), "ferry-B/prefix")
		b.ReportMetric(float64(after-mid)/float64(len(ps)), "bart-B/prefix")
		runtime.KeepAlive(t)
		// The IPv6 trie's own share: the reader nodes and root, then the
		// writer's shadow trie as well.
		t = nil
		base := heapInUse()
		t6, w6, _ := build6(f.rib)
		both := heapInUse()
		runtime.KeepAlive(w6)
		reader := heapInUse()
		b.ReportMetric(float64(reader-base)/float64(len(ps)), "trie-B/prefix")
		b.ReportMetric(float64(both-reader)/float64(len(ps)), "shadow-B/prefix")
		runtime.KeepAlive(t6)
		runtime.KeepAlive(f)
	}
}

// BenchmarkBartFastLookup6 measures bart's Fast table, the engine behind
// Lookup6, without ferry's wrapper.
func BenchmarkBartFastLookup6(b *testing.B) {
	bench6Setup(b)
	t := new(bart.Fast[*NextHop])
	for p, v := range bench6Bart.All6() {
		t.Insert(p, v)
	}
	var h *NextHop
	b.ResetTimer()
	for i := range b.N {
		h, _ = t.Lookup(bench6[i&(benchDsts-1)])
	}
	sinkNH = h
}

// BenchmarkLoad6Add adds the full IPv6 table one route at a time, as live
// updates would; ns/op divided by prefixes is the cost of one update.
func BenchmarkLoad6Add(b *testing.B) {
	_, ps := fullTable(b)
	rs := fullRoutes6(ps)
	b.ResetTimer()
	for range b.N {
		f := New()
		for _, r := range rs {
			if err := f.Add(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(rs)), "prefixes")
}
