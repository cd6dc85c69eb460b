package nat

import (
	"runtime"
	"testing"
	"time"
)

// benchPool is a /24: 256 addresses x 64,512 high ports, room for the
// millions of mappings the benchmarks create.
var benchPool = &Pool{Lo: [4]byte{198, 51, 100, 0}, Hi: [4]byte{198, 51, 100, 255}}

// benchInside is the i-th inside endpoint: 64 sockets a host, on ports
// scattered over the high range, hosts in 10.0.0.0/8.
func benchInside(i int) Endpoint {
	h := uint32(i / 64)
	port := 1024 + uint16((uint32(i)*2654435761)>>16%64000)
	return Endpoint{Addr: [4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)}, Port: port}
}

var benchRemote = ep(203, 0, 113, 1, 443)

// BenchmarkMapNew: one new mapping an op (b.N counts mappings); "grow"
// also allocates the slabs, "steady" reuses the slots of a flushed table.
func BenchmarkMapNew(b *testing.B) {
	const size = 1 << 21
	for _, steady := range []bool{false, true} {
		name := "grow"
		if steady {
			name = "steady"
		}
		b.Run(name, func(b *testing.B) {
			newTable := func() *Table {
				tb := New(Config{MaxMappings: size})
				if steady {
					for i := range size {
						tb.Map(ProtoUDP, benchInside(i), benchRemote, benchPool, 0)
					}
					tb.Flush()
				}
				return tb
			}
			tb := newTable()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			paused := time.Duration(0)
			for i := range b.N {
				if i > 0 && i%size == 0 {
					b.StopTimer()
					t0 := time.Now()
					tb = newTable()
					paused += time.Since(t0)
					b.StartTimer()
				}
				if _, _, err := tb.Map(ProtoUDP, benchInside(i%size), benchRemote, benchPool, 0); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start) - paused
			b.ReportMetric(float64(b.N)/el.Seconds(), "mappings/s")
		})
	}
}

// BenchmarkMapHit: Map of an existing mapping (a new session of a known
// inside endpoint), in random order among 65,536 mappings.
func BenchmarkMapHit(b *testing.B) {
	const n = 1 << 16
	tb := New(Config{MaxMappings: n})
	for i := range n {
		tb.Map(ProtoUDP, benchInside(i), benchRemote, benchPool, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := int(uint32(i)*2654435761) % n
		if _, _, err := tb.Map(ProtoUDP, benchInside(j), benchRemote, benchPool, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInbound: an inbound session's lookup and filtering
// (address-port-dependent, eight remotes to compare) on 65,536 mappings.
func BenchmarkInbound(b *testing.B) {
	const n = 1 << 16
	tb := New(Config{MaxMappings: n})
	p := *benchPool
	p.Filtering = AddressPortDependent
	exts := make([]Endpoint, n)
	for i := range n {
		for r := range MaxRemotes {
			exts[i], _, _ = tb.Map(ProtoUDP, benchInside(i), ep(203, 0, 113, byte(r), 443), &p, 0)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := int(uint32(i)*2654435761) % n
		if _, _, ok := tb.Inbound(ProtoUDP, exts[j], ep(203, 0, 113, 7, 443), 1); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkRewrite: SetSource on a TCP segment (address, port, two
// checksums).
func BenchmarkRewrite(b *testing.B) {
	ip := packet(ProtoTCP, inside, remote, tcpSeg(inside.Port, remote.Port, "payload"), 0, false)
	l4 := ip.Payload()
	b.ReportAllocs()
	for i := range b.N {
		if i&1 == 0 {
			SetSource(ip, l4, extEP, false)
		} else {
			SetSource(ip, l4, inside, false)
		}
	}
}

// BenchmarkMemory: heap bytes per mapping at 1,000,000 mappings (slots,
// chain heads, slab headroom), as one session each holds.
func BenchmarkMemory(b *testing.B) {
	const mappings = 1_000_000
	var per float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := New(Config{MaxMappings: mappings})
		for i := range mappings {
			if _, _, err := tb.Map(ProtoUDP, benchInside(i), benchRemote, benchPool, 0); err != nil {
				b.Fatal(i, err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st := tb.Stats(); st.Mappings != mappings {
			b.Fatalf("%d mappings", st.Mappings)
		}
		per = float64(after.HeapAlloc-before.HeapAlloc) / mappings
		runtime.KeepAlive(tb)
	}
	b.ReportMetric(per, "bytes/mapping")
}
