package neigh

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	t0  = time.Unix(1000, 0)
	k   = Key{Port: 1, IP: 0xc6336402} // 198.51.100.2
	mac = [6]byte{2, 0, 0, 0, 0, 0xb}
)

func newTable() *Table { return New(Config{Rand: func() float64 { return 0.5 }}) } // reachable time exactly 30 s

func kinds(acts []Action) []ActionKind {
	var out []ActionKind
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

func TestResolveThenConfirm(t *testing.T) {
	tb := newTable()
	if tb.Lookup(k) != nil {
		t.Fatal("empty table has an entry")
	}
	e, send, dropped := tb.Resolve(k, t0, []byte("one"))
	if !send || dropped || e.State() != Incomplete {
		t.Fatalf("first resolve: send=%v dropped=%v state=%v", send, dropped, e.State())
	}
	if _, ok := e.MAC(); ok {
		t.Fatal("INCOMPLETE entry gives a MAC")
	}
	_, send, _ = tb.Resolve(k, t0, []byte("two"))
	if send {
		t.Error("second packet sent another request at once")
	}
	q := tb.Confirm(k, mac, t0.Add(10*time.Millisecond), true)
	if len(q) != 2 || string(q[0]) != "one" || string(q[1]) != "two" {
		t.Errorf("queued frames %q", q)
	}
	if got, ok := e.MAC(); !ok || got != mac || e.State() != Reachable {
		t.Errorf("after reply: %v %v %v", got, ok, e.State())
	}
}

func TestQueueBoundDropsOldest(t *testing.T) {
	tb := newTable()
	for i, f := range []string{"a", "b", "c"} {
		if _, _, d := tb.Resolve(k, t0, []byte(f)); d {
			t.Fatalf("frame %d dropped below the bound", i)
		}
	}
	if _, _, d := tb.Resolve(k, t0, []byte("d")); !d {
		t.Error("fourth frame did not push one out")
	}
	q := tb.Confirm(k, mac, t0, true)
	if len(q) != 3 || string(q[0]) != "b" || string(q[2]) != "d" {
		t.Errorf("queue %q, want b c d", q)
	}
}

func TestIncompleteRetriesThenFails(t *testing.T) {
	tb := newTable()
	tb.Resolve(k, t0, []byte("x"))
	var got []ActionKind
	for s := 1; s <= 3; s++ {
		got = append(got, kinds(tb.Tick(t0.Add(time.Duration(s)*time.Second)))...)
	}
	want := []ActionKind{SendBroadcastRequest, SendBroadcastRequest, ResolveFailed}
	if len(got) != len(want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("actions %v, want %v", got, want)
		}
	}
	e := tb.Lookup(k)
	if e.State() != Failed {
		t.Fatalf("state %v", e.State())
	}
	// Held down right after failing: the packet is refused, not queued.
	if _, send, dropped := tb.Resolve(k, t0.Add(3100*time.Millisecond), []byte("y")); send || !dropped {
		t.Errorf("during hold: send=%v dropped=%v", send, dropped)
	}
	// After the hold, demand restarts resolution.
	tb.Tick(t0.Add(4100 * time.Millisecond))
	if _, send, _ := tb.Resolve(k, t0.Add(4200*time.Millisecond), []byte("z")); !send || e.State() != Incomplete {
		t.Errorf("after hold: send=%v state=%v", send, e.State())
	}
}

func TestReachableStaleDelayProbe(t *testing.T) {
	tb := newTable()
	tb.Confirm(k, mac, t0, true)
	e := tb.Lookup(k)
	tb.Tick(t0.Add(29 * time.Second))
	if e.State() != Reachable {
		t.Fatalf("at 29 s: %v", e.State())
	}
	tb.Tick(t0.Add(31 * time.Second))
	if e.State() != Stale {
		t.Fatalf("at 31 s: %v", e.State())
	}
	if _, ok := e.MAC(); !ok {
		t.Fatal("STALE must stay usable")
	}
	e.Touch()
	tb.Tick(t0.Add(32 * time.Second))
	if e.State() != Delay {
		t.Fatalf("used while stale: %v, want DELAY", e.State())
	}
	acts := tb.Tick(t0.Add(37 * time.Second))
	if e.State() != Probe || len(acts) != 1 || acts[0].Kind != SendUnicastProbe || acts[0].MAC != mac {
		t.Fatalf("after delay: %v %v", e.State(), acts)
	}
	tb.Tick(t0.Add(38 * time.Second))
	tb.Tick(t0.Add(39 * time.Second))
	tb.Tick(t0.Add(40 * time.Second))
	if e.State() != Failed {
		t.Fatalf("unanswered probes: %v, want FAILED", e.State())
	}
}

func TestProbeAnswered(t *testing.T) {
	tb := newTable()
	tb.Confirm(k, mac, t0, true)
	e := tb.Lookup(k)
	tb.Tick(t0.Add(31 * time.Second))
	e.Touch()
	tb.Tick(t0.Add(32 * time.Second))
	tb.Tick(t0.Add(37 * time.Second))
	tb.Confirm(k, mac, t0.Add(37500*time.Millisecond), true)
	if e.State() != Reachable {
		t.Errorf("answered probe: %v", e.State())
	}
}

func TestUnsolicitedAndPermanent(t *testing.T) {
	tb := newTable()
	tb.Confirm(k, mac, t0, false)
	if e := tb.Lookup(k); e.State() != Stale {
		t.Errorf("learnt from a request: %v, want STALE", e.State())
	}
	other := Key{Port: 0, IP: 0xc0000202}
	if err := tb.AddStatic(other, mac); err != nil {
		t.Fatal(err)
	}
	tb.Confirm(other, [6]byte{2, 9, 9, 9, 9, 9}, t0, true)
	if got, _ := tb.Lookup(other).MAC(); got != mac || tb.Lookup(other).State() != Permanent {
		t.Errorf("PERMANENT changed: %v %v", got, tb.Lookup(other).State())
	}
	for s := 1; s < 200; s++ {
		tb.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	if tb.Lookup(other) == nil {
		t.Error("PERMANENT entry collected")
	}
	if tb.Lookup(k) != nil {
		t.Error("unused STALE entry not collected after gc_stale_time")
	}
	if err := tb.AddStatic(k, [6]byte{1, 0, 0, 0, 0, 1}); err == nil {
		t.Error("multicast static MAC accepted")
	}
}

func TestLookupAllocsNothing(t *testing.T) {
	tb := newTable()
	tb.Confirm(k, mac, t0, true)
	allocs := testing.AllocsPerRun(1000, func() {
		e := tb.Lookup(k)
		if _, ok := e.MAC(); !ok {
			t.Fatal("no MAC")
		}
		e.Touch()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocs per lookup", allocs)
	}
}

func TestConcurrentReadersAndWriter(t *testing.T) {
	tb := newTable()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for ip := uint32(0); ip < 64; ip++ {
					if e := tb.Lookup(Key{Port: 1, IP: ip}); e != nil {
						if m, ok := e.MAC(); ok && m != mac {
							t.Error("torn MAC")
							return
						}
						e.Touch()
					}
				}
			}
		}()
	}
	now := t0
	for i := 0; i < 2000; i++ {
		key := Key{Port: 1, IP: uint32(i % 64)}
		now = now.Add(50 * time.Millisecond)
		switch i % 4 {
		case 0:
			tb.Resolve(key, now, []byte("f"))
		case 1:
			tb.Confirm(key, mac, now, true)
		case 2:
			tb.Tick(now)
		case 3:
			if i%40 == 3 {
				tb.Delete(key)
			}
		}
	}
	close(stop)
	wg.Wait()
	if len(tb.Snapshot()) == 0 {
		t.Error("table empty after the run")
	}
}

// IPv4 and IPv6 neighbours share the table; their keys never collide and
// lookups stay allocation-free.
func TestIPv6Keys(t *testing.T) {
	tb := New(Config{})
	k4 := Key{Port: 1, IP: 0xc0000202}
	k6 := Key{Port: 1, IP6: netip.MustParseAddr("2001:db8::2").As16()}
	if k4.V6() || !k6.V6() || k6.Addr().String() != "2001:db8::2" || k4.Addr().String() != "192.0.2.2" {
		t.Fatalf("keys %v %v", k4.Addr(), k6.Addr())
	}
	now := time.Now()
	tb.Confirm(k4, [6]byte{2, 0, 0, 0, 0, 4}, now, true)
	tb.Confirm(k6, [6]byte{2, 0, 0, 0, 0, 6}, now, true)
	m4, _ := tb.Lookup(k4).MAC()
	m6, _ := tb.Lookup(k6).MAC()
	if m4[5] != 4 || m6[5] != 6 {
		t.Errorf("macs %x %x", m4, m6)
	}
	if s := tb.Snapshot(); len(s) != 2 || s[0].Key != k4 || s[1].Key != k6 {
		t.Errorf("snapshot %+v", s)
	}
	if a := testing.AllocsPerRun(100, func() { tb.Lookup(k6) }); a != 0 {
		t.Errorf("%.0f allocations per IPv6 lookup", a)
	}
}

// A cached lookup never returns an entry the table has since replaced.
func TestLookupCached(t *testing.T) {
	tb := New(Config{})
	var c Cache
	k6 := Key{Port: 0, IP6: netip.MustParseAddr("2001:db8::7").As16()}
	if tb.LookupCached(&c, k6) != nil {
		t.Fatal("entry in an empty table")
	}
	tb.Confirm(k6, [6]byte{2, 0, 0, 0, 0, 1}, t0, true)
	e1 := tb.LookupCached(&c, k6)
	if e1 == nil || tb.LookupCached(&c, k6) != e1 {
		t.Fatal("cached lookup misses a new entry")
	}
	tb.Delete(k6)
	if tb.LookupCached(&c, k6) != nil {
		t.Fatal("cache returned a deleted entry")
	}
	tb.Confirm(k6, [6]byte{2, 0, 0, 0, 0, 2}, t0, true)
	if e2 := tb.LookupCached(&c, k6); e2 == nil || e2 == e1 {
		t.Fatal("cache returned the old entry after re-adding")
	}
	if a := testing.AllocsPerRun(100, func() { tb.LookupCached(&c, k6) }); a != 0 {
		t.Errorf("%.0f allocations", a)
	}
}
