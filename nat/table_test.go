package nat

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func ep(a, b, c, d byte, port uint16) Endpoint { return Endpoint{[4]byte{a, b, c, d}, port} }

func masq(f Filtering) *Pool {
	return &Pool{Lo: [4]byte{198, 51, 100, 1}, Hi: [4]byte{198, 51, 100, 1}, Filtering: f}
}

const sec = int64(time.Second)

func mustMap(t *testing.T, tb *Table, proto uint8, in, rem Endpoint, p *Pool, now int64) (Endpoint, uint32) {
	t.Helper()
	ext, id, err := tb.Map(proto, in, rem, p, now)
	if err != nil {
		t.Fatalf("Map(%d, %v): %v", proto, in, err)
	}
	if id == 0 {
		t.Fatalf("Map(%d, %v): id 0", proto, in)
	}
	return ext, id
}

// RFC 4787 REQ-1, RFC 5382 REQ-1: one inside endpoint, two remotes, one
// external endpoint.
func TestEndpointIndependentMapping(t *testing.T) {
	tb := New(Config{})
	p := masq(EndpointIndependent)
	in := ep(10, 0, 0, 2, 40000)
	for _, proto := range []uint8{ProtoTCP, ProtoUDP, ProtoICMP} {
		e1, id1 := mustMap(t, tb, proto, in, ep(203, 0, 113, 1, 53), p, 0)
		e2, id2 := mustMap(t, tb, proto, in, ep(192, 0, 2, 77, 9999), p, 0)
		if e1 != e2 || id1 != id2 {
			t.Errorf("proto %d: two remotes got %v (id %d) and %v (id %d)", proto, e1, id1, e2, id2)
		}
		if e1.Addr != p.Lo {
			t.Errorf("proto %d: external address %v not the pool's", proto, e1.Addr)
		}
	}
	if st := tb.Stats(); st.Mappings != 3 || st.TCP != 1 || st.UDP != 1 || st.ICMP != 1 || st.Created != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestPortPreservation(t *testing.T) {
	tb := New(Config{})
	p := masq(EndpointIndependent)
	for _, port := range []uint16{80, 1023, 1024, 40000, 65535} {
		ext, _ := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 2, port), ep(203, 0, 113, 1, 53), p, 0)
		if ext.Port != port {
			t.Errorf("port %d mapped to %d, want it kept", port, ext.Port)
		}
	}
	// Another host on the same port: the only address has it taken, so a
	// different port of the same class and parity.
	ext, _ := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 3, 40000), ep(203, 0, 113, 1, 53), p, 0)
	if ext.Port == 40000 || ext.Port < 1024 || ext.Port%2 != 0 {
		t.Errorf("second host's 40000 mapped to %d, want another even port >= 1024", ext.Port)
	}
	// With two addresses the port is kept on the other one.
	p2 := &Pool{Lo: [4]byte{198, 51, 100, 1}, Hi: [4]byte{198, 51, 100, 2}}
	a, _ := mustMap(t, tb, ProtoTCP, ep(10, 0, 0, 2, 5555), ep(203, 0, 113, 1, 80), p2, 0)
	b, _ := mustMap(t, tb, ProtoTCP, ep(10, 0, 0, 3, 5555), ep(203, 0, 113, 1, 80), p2, 0)
	if a.Port != 5555 || b.Port != 5555 || a.Addr == b.Addr {
		t.Errorf("two hosts' 5555 over two addresses: %v and %v", a, b)
	}
}

// RFC 4787 REQ-3: no port overloading, class kept.
func TestNoOverloadingClassKept(t *testing.T) {
	tb := New(Config{})
	p := masq(EndpointIndependent)
	seen := map[Endpoint]Endpoint{}
	for i := range 2000 {
		port := uint16(1024 + i%3) // many hosts on three high ports
		if i%10 == 0 {
			port = uint16(22 + i%2) // and some on low ones
		}
		in := ep(10, 0, byte(i>>8), byte(i), port)
		ext, _ := mustMap(t, tb, ProtoTCP, in, ep(203, 0, 113, 1, 443), p, 0)
		if other, ok := seen[ext]; ok {
			t.Fatalf("%v and %v both on %v", other, in, ext)
		}
		seen[ext] = in
		if (port < 1024) != (ext.Port < 1024) || ext.Port == 0 {
			t.Fatalf("%v mapped to %v: class changed", in, ext)
		}
		if ext.Port%2 != port%2 {
			t.Fatalf("%v mapped to %v: parity changed", in, ext)
		}
	}
	n := 0
	tb.Walk(0, func(mi MappingInfo) bool { n++; return true })
	if n != 2000 {
		t.Errorf("Walk saw %d mappings, want 2000", n)
	}
	// A pool with explicit ports: those, kept in class where it can.
	pp := &Pool{Lo: [4]byte{198, 51, 100, 9}, Hi: [4]byte{198, 51, 100, 9}, PortLo: 1000, PortHi: 1100}
	ext, _ := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 1, 1050), Endpoint{}, pp, 0)
	if ext.Port != 1050 {
		t.Errorf("1050 through 1000-1100 went to %d, want kept", ext.Port)
	}
	ext, _ = mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 1, 5000), Endpoint{}, pp, 0)
	if ext.Port < 1024 || ext.Port > 1100 {
		t.Errorf("5000 through 1000-1100 went to %d, want 1024-1100", ext.Port)
	}
	ext, _ = mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 1, 80), Endpoint{}, pp, 0)
	if ext.Port < 1000 || ext.Port > 1023 {
		t.Errorf("80 through 1000-1100 went to %d, want 1000-1023", ext.Port)
	}
}

func TestPoolExhausted(t *testing.T) {
	tb := New(Config{})
	// Two addresses x 8 ports.
	p := &Pool{Lo: [4]byte{198, 51, 100, 1}, Hi: [4]byte{198, 51, 100, 2}, PortLo: 2000, PortHi: 2007}
	seen := map[Endpoint]bool{}
	for i := range 16 {
		ext, _ := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, byte(i), 3000), Endpoint{}, p, 0)
		if seen[ext] || ext.Port < 2000 || ext.Port > 2007 {
			t.Fatalf("mapping %d got %v", i, ext)
		}
		seen[ext] = true
	}
	if _, _, err := tb.Map(ProtoUDP, ep(10, 0, 1, 0, 3000), Endpoint{}, p, 0); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("17th mapping: err %v, want ErrPoolExhausted", err)
	}
	// TCP has its own ports.
	mustMap(t, tb, ProtoTCP, ep(10, 0, 1, 0, 3000), Endpoint{}, p, 0)
	if st := tb.Stats(); st.PoolExhausted != 1 || st.Mappings != 17 {
		t.Errorf("stats %+v", st)
	}
	if _, _, err := tb.Map(ProtoUDP, ep(10, 0, 0, 1, 1), Endpoint{}, &Pool{Lo: [4]byte{2}, Hi: [4]byte{1}}, 0); !errors.Is(err, ErrBadPool) {
		t.Errorf("Lo > Hi: err %v", err)
	}
	if _, _, err := tb.Map(47, ep(10, 0, 0, 1, 1), Endpoint{}, p, 0); !errors.Is(err, ErrProtocol) {
		t.Errorf("GRE: err %v", err)
	}
}

func TestTableFull(t *testing.T) {
	tb := New(Config{MaxMappings: 100, Linger: time.Second})
	p := &Pool{Lo: [4]byte{198, 51, 100, 1}, Hi: [4]byte{198, 51, 100, 1}}
	var ids []uint32
	for i := range 100 {
		_, id := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, byte(i), 4000), Endpoint{}, p, 0)
		ids = append(ids, id)
	}
	if _, _, err := tb.Map(ProtoUDP, ep(10, 0, 1, 0, 4000), Endpoint{}, p, 0); !errors.Is(err, ErrTableFull) {
		t.Fatalf("101st mapping: err %v, want ErrTableFull", err)
	}
	// An existing mapping is still found.
	mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 5, 4000), Endpoint{}, p, 0)
	tb.Release(ids[5], 0)
	tb.Release(ids[5], 0)
	// A lingering mapping is reclaimed for a new one when full.
	tb.Release(ids[7], 0)
	if _, _, err := tb.Map(ProtoUDP, ep(10, 0, 1, 0, 4000), Endpoint{}, p, sec/10); err != nil {
		t.Fatalf("with lingering mappings: %v", err)
	}
	st := tb.Stats()
	if st.Mappings != 100 || st.TableFull != 1 || st.Reclaimed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFiltering(t *testing.T) {
	in := ep(10, 0, 0, 2, 5000)
	peer := ep(203, 0, 113, 1, 3478)
	samePeerOtherPort := ep(203, 0, 113, 1, 3479)
	stranger := ep(192, 0, 2, 9, 3478)
	for _, tc := range []struct {
		f                    Filtering
		peer, otherPort, str bool
	}{
		{EndpointIndependent, true, true, true},
		{AddressDependent, true, true, false},
		{AddressPortDependent, true, false, false},
	} {
		tb := New(Config{})
		ext, id := mustMap(t, tb, ProtoUDP, in, peer, masq(tc.f), 0)
		for _, c := range []struct {
			r    Endpoint
			want bool
		}{{peer, tc.peer}, {samePeerOtherPort, tc.otherPort}, {stranger, tc.str}} {
			got, gid, ok := tb.Inbound(ProtoUDP, ext, c.r, 0)
			if ok != c.want {
				t.Errorf("%v: inbound from %v: ok %v, want %v", tc.f, c.r, ok, c.want)
			}
			if ok && (got != in || gid != id) {
				t.Errorf("%v: inbound got %v id %d, want %v id %d", tc.f, got, gid, in, id)
			}
		}
		if _, _, ok := tb.Inbound(ProtoTCP, ext, peer, 0); ok {
			t.Errorf("%v: TCP inbound to a UDP mapping accepted", tc.f)
		}
		if _, _, ok := tb.Inbound(ProtoUDP, ep(198, 51, 100, 1, 5001), peer, 0); ok {
			t.Errorf("%v: inbound to no mapping accepted", tc.f)
		}
		refused := 3 - btoi(tc.peer) - btoi(tc.otherPort) - btoi(tc.str)
		if st := tb.Stats(); st.Refused != uint64(refused) {
			t.Errorf("%v: refused %d, want %d", tc.f, st.Refused, refused)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRemotesBounded(t *testing.T) {
	tb := New(Config{})
	p := masq(AddressPortDependent)
	in := ep(10, 0, 0, 2, 5000)
	var ext Endpoint
	for i := range 12 {
		ext, _ = mustMap(t, tb, ProtoUDP, in, ep(203, 0, 113, byte(i), 53), p, 0)
	}
	// The 4 oldest are forgotten.
	for i := range 12 {
		_, _, ok := tb.Inbound(ProtoUDP, ext, ep(203, 0, 113, byte(i), 53), 0)
		if ok != (i >= 12-MaxRemotes) {
			t.Errorf("remote %d: ok %v", i, ok)
		}
	}
	tb.Walk(0, func(mi MappingInfo) bool {
		if len(mi.Remotes) != MaxRemotes || mi.Remotes[0] != ep(203, 0, 113, 4, 53) || mi.Remotes[7] != ep(203, 0, 113, 11, 53) {
			t.Errorf("remotes %v", mi.Remotes)
		}
		return true
	})
}

func TestReleaseLingerExpire(t *testing.T) {
	tb := New(Config{Linger: 30 * time.Second})
	p := masq(EndpointIndependent)
	in := ep(10, 0, 0, 2, 5000)
	ext, id := mustMap(t, tb, ProtoTCP, in, ep(203, 0, 113, 1, 80), p, 0)
	_, id2 := mustMap(t, tb, ProtoTCP, in, ep(203, 0, 113, 2, 80), p, 0) // a second session
	if id2 != id {
		t.Fatal("second session got another mapping")
	}
	_, idIn, ok := tb.Inbound(ProtoTCP, ext, ep(203, 0, 113, 3, 999), 1*sec) // a third, inbound
	if !ok || idIn != id {
		t.Fatal("inbound session refused")
	}
	tb.Release(id, 10*sec)
	tb.Release(id, 11*sec)
	if n := tb.Expire(1000*sec, 100); n != 0 {
		t.Fatalf("expired %d with one session left", n)
	}
	tb.Release(id, 20*sec) // last session: linger until 50 s
	tb.Release(id, 20*sec) // one too many: ignored
	var info MappingInfo
	tb.Walk(25*sec, func(mi MappingInfo) bool { info = mi; return true })
	if info.Refs != 0 || info.IdleFor != 5*time.Second || info.External != ext {
		t.Errorf("walk: %+v", info)
	}
	if st := tb.Stats(); st.Lingering != 1 {
		t.Errorf("lingering %d", st.Lingering)
	}
	if n := tb.Expire(49*sec, 100); n != 0 {
		t.Fatalf("expired %d before the linger ran out", n)
	}
	// Reused within the linger: same external endpoint, lingers again.
	ext2, id3 := mustMap(t, tb, ProtoTCP, in, ep(203, 0, 113, 9, 80), p, 45*sec)
	if ext2 != ext || id3 != id {
		t.Errorf("reuse within linger got %v, want %v", ext2, ext)
	}
	tb.Release(id3, 46*sec)
	if n := tb.Expire(75*sec, 100); n != 0 {
		t.Fatalf("expired %d at 75 s, linger restarted at 46 s", n)
	}
	if n := tb.Expire(76*sec, 100); n != 1 {
		t.Fatalf("expired %d at 76 s, want 1", n)
	}
	if _, _, ok := tb.Inbound(ProtoTCP, ext, ep(203, 0, 113, 3, 999), 77*sec); ok {
		t.Error("inbound to an expired mapping accepted")
	}
	tb.Release(id, 80*sec) // stale id: ignored
	if st := tb.Stats(); st.Mappings != 0 || st.Freed != 1 || st.TCP != 0 || st.Lingering != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestExpireBudget(t *testing.T) {
	tb := New(Config{MaxMappings: 1 << 16, Linger: time.Second})
	p := &Pool{Lo: [4]byte{198, 51, 100, 0}, Hi: [4]byte{198, 51, 100, 255}}
	for i := range 1000 {
		_, id := mustMap(t, tb, ProtoUDP, ep(10, 0, byte(i>>8), byte(i), 7000), Endpoint{}, p, 0)
		tb.Release(id, int64(i))
	}
	total := 0
	for range 100 {
		n := tb.Expire(10*sec, 30)
		if n > 30 {
			t.Fatalf("Expire freed %d over a budget of 30", n)
		}
		total += n
	}
	if total != 1000 {
		t.Errorf("freed %d of 1000", total)
	}
}

func TestFlush(t *testing.T) {
	tb := New(Config{})
	p := masq(EndpointIndependent)
	_, id := mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 2, 5000), Endpoint{}, p, 0)
	mustMap(t, tb, ProtoTCP, ep(10, 0, 0, 2, 5000), Endpoint{}, p, 0)
	tb.Flush()
	if st := tb.Stats(); st.Mappings != 0 || st.Freed != 2 {
		t.Errorf("after flush %+v", st)
	}
	tb.Release(id, 0) // void
	tb.Release(0, 0)
	tb.Release(^uint32(0), 0)
	mustMap(t, tb, ProtoUDP, ep(10, 0, 0, 3, 5000), Endpoint{}, p, 0)
	if st := tb.Stats(); st.Mappings != 1 {
		t.Errorf("after flush and map %+v", st)
	}
}

// Several goroutines map, look up and release at once; at the end the
// table holds exactly the mappings still referenced, and no external
// endpoint has two inside endpoints.
func TestConcurrent(t *testing.T) {
	tb := New(Config{MaxMappings: 1 << 15, Linger: time.Millisecond})
	p := &Pool{Lo: [4]byte{198, 51, 100, 1}, Hi: [4]byte{198, 51, 100, 2}, PortLo: 1024, PortHi: 9000}
	const workers = 4
	iters := 20000
	if raceEnabled {
		iters = 4000
	}
	var wg sync.WaitGroup
	held := make([]map[uint32]int, workers)
	for w := range workers {
		held[w] = map[uint32]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var ids []uint32
			for i := range iters {
				now := int64(i) * int64(time.Microsecond)
				in := ep(10, 0, byte(r.IntN(4)), byte(r.IntN(64)), uint16(1024+r.IntN(32)))
				proto := []uint8{ProtoTCP, ProtoUDP, ProtoICMP}[r.IntN(3)]
				switch {
				case r.IntN(3) > 0 || len(ids) == 0:
					ext, id, err := tb.Map(proto, in, ep(203, 0, 113, byte(r.IntN(4)), 53), p, now)
					if err != nil {
						t.Error(err)
						return
					}
					ids = append(ids, id)
					if _, id2, ok := tb.Inbound(proto, ext, ep(1, 2, 3, 4, 5), now); ok {
						ids = append(ids, id2)
						if id2 != id {
							t.Errorf("Inbound(%v) id %d, Map id %d", ext, id2, id)
						}
					}
				default:
					k := r.IntN(len(ids))
					tb.Release(ids[k], now)
					ids[k] = ids[len(ids)-1]
					ids = ids[:len(ids)-1]
				}
				if w == 0 && i%100 == 0 {
					tb.Expire(now, 50)
				}
			}
			for _, id := range ids {
				held[w][id]++
			}
		}()
	}
	wg.Wait()
	refs := map[uint32]int{}
	for _, h := range held {
		for id, n := range h {
			refs[id] += n
		}
	}
	exts := map[[2]any]bool{}
	live := 0
	tb.Walk(0, func(mi MappingInfo) bool {
		k := [2]any{mi.Proto, mi.External}
		if exts[k] {
			t.Errorf("external %v used twice", mi.External)
		}
		exts[k] = true
		if mi.Refs > 0 {
			live++
		}
		return true
	})
	if live != len(refs) {
		t.Errorf("%d referenced mappings, callers hold %d", live, len(refs))
	}
	for id, n := range refs {
		for range n {
			tb.Release(id, 0)
		}
	}
	tb.Expire(1<<62, 1<<30)
	if st := tb.Stats(); st.Mappings != 0 || st.Created != st.Freed {
		t.Errorf("after releasing everything: %+v", st)
	}
}

func TestZeroAllocsTable(t *testing.T) {
	tb := New(Config{})
	p := masq(AddressDependent)
	in, rem := ep(10, 0, 0, 2, 5000), ep(203, 0, 113, 1, 53)
	ext, id := mustMap(t, tb, ProtoUDP, in, rem, p, 0)
	if n := testing.AllocsPerRun(1000, func() {
		tb.Map(ProtoUDP, in, rem, p, 1)
		tb.Release(id, 2)
	}); n != 0 {
		t.Errorf("Map (existing) + Release: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		tb.Inbound(ProtoUDP, ext, rem, 1)
		tb.Inbound(ProtoUDP, ext, ep(1, 1, 1, 1, 1), 1)
		tb.Release(id, 2)
	}); n != 0 {
		t.Errorf("Inbound + Release: %v allocs", n)
	}
}

func TestAddStatic(t *testing.T) {
	tb := New(Config{Linger: time.Second})
	server, fwd := ep(10, 0, 0, 80, 80), ep(198, 51, 100, 1, 8080)
	id, err := tb.AddStatic(ProtoTCP, server, fwd, 0)
	if err != nil || id == 0 {
		t.Fatalf("AddStatic: %d %v", id, err)
	}
	if _, err := tb.AddStatic(ProtoTCP, ep(10, 0, 0, 81, 80), fwd, 0); err != ErrInUse {
		t.Errorf("second forward on the same port: %v", err)
	}
	// Anyone may connect, whatever the pool filtering elsewhere.
	in, sid, ok := tb.Inbound(ProtoTCP, fwd, ep(192, 0, 2, 1, 40000), sec)
	if !ok || in != server || sid != id {
		t.Fatalf("Inbound: %v %d %v", in, sid, ok)
	}
	// The server's own outbound connections from port 80 leave from the forward.
	ext, mid := mustMap(t, tb, ProtoTCP, server, ep(192, 0, 2, 2, 443), masq(AddressPortDependent), sec)
	if ext != fwd || mid != id {
		t.Errorf("server's outbound mapped to %v (id %d), want %v", ext, mid, fwd)
	}
	// Masquerade never hands out the forwarded port.
	for i := range 50 {
		e, _ := mustMap(t, tb, ProtoTCP, ep(10, 0, 1, byte(i), 8080), Endpoint{}, masq(0), sec)
		if e == fwd {
			t.Fatal("a dynamic mapping took the forwarded endpoint")
		}
	}
	// Removing the forward: the config's reference and the sessions' go.
	tb.Release(id, 2*sec)
	tb.Release(sid, 2*sec)
	tb.Release(mid, 2*sec)
	if n := tb.Expire(4*sec, 1000); n < 1 {
		t.Errorf("expired %d", n)
	}
	if _, _, ok := tb.Inbound(ProtoTCP, fwd, ep(192, 0, 2, 1, 40000), 5*sec); ok {
		t.Error("removed forward still lets in")
	}
}

// The bound is exact with several shards too.
func TestTableFullSharded(t *testing.T) {
	const max = 8192
	tb := New(Config{MaxMappings: max})
	if len(tb.shards) < 2 {
		t.Fatalf("%d shards", len(tb.shards))
	}
	p := &Pool{Lo: [4]byte{198, 51, 100, 0}, Hi: [4]byte{198, 51, 100, 255}}
	for i := range max {
		mustMap(t, tb, ProtoUDP, benchInside(i), Endpoint{}, p, 0)
	}
	if _, _, err := tb.Map(ProtoUDP, benchInside(max), Endpoint{}, p, 0); err != ErrTableFull {
		t.Fatalf("mapping %d: %v, want ErrTableFull", max+1, err)
	}
	if st := tb.Stats(); st.Mappings != max {
		t.Errorf("%d mappings", st.Mappings)
	}
}
