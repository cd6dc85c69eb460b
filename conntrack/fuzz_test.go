package conntrack

import (
	"testing"
)

// FuzzTrack feeds random packet sequences over a small space of hosts,
// ports and protocols into a small table, with the clock moving forward,
// and checks that nothing panics and the table's invariants hold: no more
// entries than its capacity, every result consistent with its state, and
// every live entry found again by both of its tuples.
func FuzzTrack(f *testing.F) {
	f.Add([]byte{0, 6, 0x02, 1, 1, 0, 6, 0x12, 2, 1, 0, 6, 0x10, 3, 1})
	f.Add([]byte{1, 17, 0, 0, 0, 2, 17, 0, 0, 9, 0, 1, 8, 0, 0})
	f.Add([]byte{3, 1, 3, 4, 0, 255, 6, 0x14, 200, 77})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		cfg.Capacity = 64
		cfg.TCPLoose = len(data)%2 == 0
		tab := New(cfg)
		var m Meta
		var scratch Conn
		now := int64(1e12)
		hosts := [4][4]byte{{192, 0, 2, 1}, {192, 0, 2, 2}, {198, 51, 100, 1}, {203, 0, 113, 9}}
		protos := [...]uint8{ProtoTCP, ProtoUDP, ProtoICMP, 47, ProtoTCP, ProtoUDP}
		for len(data) >= 5 {
			b := data[:5]
			data = data[5:]
			m.Reset()
			proto := protos[int(b[1])%len(protos)]
			src, dst := hosts[b[0]&3], hosts[b[0]>>2&3]
			sport, dport := uint16(1000+int(b[0]>>4&3)), uint16(80+int(b[0]>>6))
			m.Tuple.SetV4(src, dst, sport, dport, proto)
			switch proto {
			case ProtoTCP:
				m.Flags = b[2]
				m.Seq = uint32(b[3]) << uint(b[4]&31)
				m.Ack = uint32(b[4]) << uint(b[3]&31)
				m.Window = uint16(b[3]) << 8
				m.Payload = uint32(b[4] & 0x7f)
				m.WScale, m.HasWScale = b[4]&15, b[4]&16 != 0
			case ProtoICMP:
				m.Tuple.SetICMP(b[2]&31, b[3]&3, uint16(b[4]&3))
				if b[3]&4 != 0 {
					m.Inner.SetV4(dst, src, sport, dport, protos[int(b[4])%2])
					m.HasInner = true
				}
			}
			m.Truncated = b[2] == 0xff
			// The clock moves up to ~64 s a packet, so entries expire.
			now += int64(b[3]&63) * sec / 4
			r := tab.Track(&m, now, &scratch)
			switch r.State {
			case StateInvalid, StateUntracked:
				if r.Conn != nil {
					t.Fatalf("%v with a Conn", r.State)
				}
			case StateNew, StateEstablished, StateRelated:
				if r.Conn == nil {
					t.Fatalf("%v without a Conn", r.State)
				}
			default:
				t.Fatalf("state %d", r.State)
			}
			if r.State == StateNew && r.Conn == &scratch && b[2]&0x40 == 0 {
				if _, err := tab.Confirm(&scratch, now); err != nil && err != ErrFull && err != ErrReplyTaken {
					t.Fatal(err)
				}
			}
			if b[4]&0xe0 == 0xe0 {
				tab.Expire(now, int(b[3]))
			}
			if n := tab.Len(); n > cfg.Capacity {
				t.Fatalf("%d entries, capacity %d", n, cfg.Capacity)
			}
		}
		live := 0
		tab.Walk(now, func(i Info) bool {
			live++
			for d, k := range []Tuple{i.Orig, i.Reply} {
				if got, ok := tab.Lookup(&k, now); !ok || got != Dir(d) {
					t.Fatalf("entry %v not found by its %v tuple", i, Dir(d))
				}
			}
			return true
		})
		if st := tab.Stats(); st.Entries > cfg.Capacity || live > st.Entries {
			t.Fatalf("walk saw %d, stats %+v", live, st)
		}
	})
}
