package conntrack

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchMeta fills m for UDP flow i (up to 16M distinct flows from
// 192.0.2.0/24 to one server) in direction d.
func benchMeta(m *Meta, i int, d Dir) {
	cli := [4]byte{192, 0, 2, byte(i >> 16)}
	cport := uint16(i)
	m.Reset()
	if d == Original {
		m.Tuple.SetV4(cli, hostB, cport, 443, ProtoUDP)
	} else {
		m.Tuple.SetV4(hostB, cli, 443, cport, ProtoUDP)
	}
	m.Payload = 1200
}

// BenchmarkNew: Track and Confirm of new flows on one goroutine (b.N
// counts flows). "steady" is a table that has grown before (its slabs
// exist, as after a router's first minutes): new flows take freed slots.
// "grow" starts empty, so it also pays for allocating and first touching
// the slabs. The table is emptied off the clock when full.
func BenchmarkNew(b *testing.B) {
	const capacity = 1 << 20
	for _, grown := range []bool{true, false} {
		name := "grow"
		if grown {
			name = "steady"
		}
		b.Run(name, func(b *testing.B) {
			tab := New(testConfig(capacity))
			var m Meta
			var scratch Conn
			fill := func(n int) {
				for i := range n {
					benchMeta(&m, i, Original)
					r := tab.Track(&m, sec, &scratch)
					if _, err := tab.Confirm(r.Conn, sec); err != nil && err != ErrFull {
						b.Fatal(err)
					}
				}
			}
			if grown {
				fill(capacity)
				tab.Flush()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%(capacity/2) == capacity/2-1 {
					b.StopTimer()
					tab.Flush()
					b.StartTimer()
				}
				benchMeta(&m, i%(1<<24), Original)
				r := tab.Track(&m, sec, &scratch)
				if _, err := tab.Confirm(r.Conn, sec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}

// BenchmarkLookupEstablished: Track of packets of established flows in
// random order, so most lookups miss the CPU caches as a router's do.
// udp-1M is a lookup and refresh among 1,000,000 entries; tcp-ack-1k is
// the TCP state machine and window checks on 1,000 flows in cache.
func BenchmarkLookupEstablished(b *testing.B) {
	b.Run("udp-1M", func(b *testing.B) {
		const flows = 1_000_000
		tab := New(testConfig(1 << 21))
		var m Meta
		var scratch Conn
		for i := range flows {
			benchMeta(&m, i, Original)
			trackConfirm(tab, &m, sec, &scratch)
			benchMeta(&m, i, Reply)
			trackConfirm(tab, &m, sec, &scratch)
		}
		order := rand.Perm(flows)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			benchMeta(&m, order[i%flows], Dir(i&1))
			if r := tab.Track(&m, 2*sec, &scratch); r.State != StateEstablished {
				b.Fatal(r.State)
			}
		}
	})
	b.Run("tcp-ack-1k", func(b *testing.B) {
		const flows = 1000
		tab := New(testConfig(1 << 12))
		fl := make([]*flow, flows)
		for i := range fl {
			f := newFlow(nil, tab, ProtoTCP)
			f.cport = uint16(10000 + i)
			for _, s := range handshake {
				f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, sec)
			}
			fl[i] = f
		}
		var scratch Conn
		seq := make([]uint32, flows)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i % flows
			f := fl[k]
			// The client sends 100 bytes, the server acknowledges them.
			m := f.meta(Dir(i / flows & 1))
			m.Flags, m.Window = TCPAck, 502
			if i/flows&1 == 0 {
				m.Seq, m.Ack, m.Payload = 1001+seq[k], 5001, 100
			} else {
				seq[k] += 100
				m.Seq, m.Ack = 5001, 1001+seq[k]
			}
			if r := tab.Track(m, 2*sec, &scratch); r.State != StateEstablished {
				b.Fatal(r.State)
			}
		}
	})
}

// BenchmarkMemory: heap bytes per entry with 1,000,000 entries (the
// table's slabs, chains and shards; runtime.MemStats after a GC, before
// building the table and after filling it).
func BenchmarkMemory(b *testing.B) {
	const flows = 1_000_000
	var perEntry float64
	var entries int
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tab := New(testConfig(1 << 20))
		var m Meta
		var scratch Conn
		for i := range flows {
			benchMeta(&m, i, Original)
			trackConfirm(tab, &m, sec, &scratch)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		entries = tab.Len()
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / float64(entries)
		runtime.KeepAlive(tab)
	}
	b.ReportMetric(perEntry, "bytes/entry")
	b.ReportMetric(float64(entries), "entries")
}
