package conntrack

import (
	"fmt"
	"sync"
	"testing"
)

// udpMeta fills m for a UDP datagram of flow i (client port and address
// vary with i) in direction d.
func udpMeta(m *Meta, i int, d Dir) {
	cli := [4]byte{192, 0, 2, byte(i >> 16)}
	srv := [4]byte{198, 51, 100, byte(i >> 24)}
	cport, sport := uint16(i), uint16(53)
	m.Reset()
	if d == Original {
		m.Tuple.SetV4(cli, srv, cport, sport, ProtoUDP)
	} else {
		m.Tuple.SetV4(srv, cli, sport, cport, ProtoUDP)
	}
}

// trackConfirm is a worker's handling of one accepted packet.
func trackConfirm(tab *Table, m *Meta, now int64, scratch *Conn) (Result, error) {
	r := tab.Track(m, now, scratch)
	if r.State == StateNew && r.Conn == scratch {
		c, err := tab.Confirm(scratch, now)
		r.Conn = c
		return r, err
	}
	return r, nil
}

// A flood of new flows fills the table to its capacity and no further,
// evicting only unreplied entries; flows that were answered keep working.
func TestCapacityEarlyDrop(t *testing.T) {
	const capacity = 300 // one shard
	tab := New(testConfig(capacity))
	var m Meta
	var scratch Conn
	now := sec
	const kept = 100
	for i := range kept {
		udpMeta(&m, i, Original)
		trackConfirm(tab, &m, now, &scratch)
		udpMeta(&m, i, Reply)
		trackConfirm(tab, &m, now, &scratch)
	}
	now += 3 * sec
	for i := range kept / 2 { // half become ASSURED streams
		udpMeta(&m, i, Original)
		trackConfirm(tab, &m, now, &scratch)
	}
	full := 0
	for i := kept; i < kept+20000; i++ {
		udpMeta(&m, i, Original)
		if _, err := trackConfirm(tab, &m, now, &scratch); err == ErrFull {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
		if n := tab.Len(); n > capacity {
			t.Fatalf("%d entries, capacity %d", n, capacity)
		}
	}
	st := tab.Stats()
	if st.Entries != capacity || st.EarlyDrops == 0 {
		t.Fatalf("after the flood: %+v", st)
	}
	t.Logf("flood: %d early drops, %d refused", st.EarlyDrops, full)
	for i := range kept {
		udpMeta(&m, i, Reply)
		if r, _ := trackConfirm(tab, &m, now, &scratch); r.State != StateEstablished {
			t.Fatalf("answered flow %d lost in the flood: %v", i, r.State)
		}
	}
	// With only answered flows in the table there is nothing to drop.
	tab2 := New(testConfig(capacity))
	for i := range capacity {
		udpMeta(&m, i, Original)
		trackConfirm(tab2, &m, now, &scratch)
		udpMeta(&m, i, Reply)
		trackConfirm(tab2, &m, now, &scratch)
	}
	udpMeta(&m, capacity, Original)
	if _, err := trackConfirm(tab2, &m, now, &scratch); err != ErrFull {
		t.Fatalf("full of answered flows: %v", err)
	}
	if st := tab2.Stats(); st.Full != 1 || st.EarlyDrops != 0 || st.Entries != capacity {
		t.Fatalf("stats %+v", st)
	}
	tab2.Flush()
	if n := tab2.Len(); n != 0 {
		t.Fatalf("%d entries after Flush", n)
	}
	udpMeta(&m, capacity, Original)
	if _, err := trackConfirm(tab2, &m, now, &scratch); err != nil {
		t.Fatalf("after Flush: %v", err)
	}
}

// Both directions of every flow are tracked from two workers at once, as
// when a NATed flow's directions arrive on different workers; each flow
// ends with one entry whichever side's packet came first. A third
// goroutine expires, walks and counts meanwhile. Run with -race.
func TestConcurrentTwoDirections(t *testing.T) {
	flows := 20000
	if raceEnabled {
		flows = 4000
	}
	tab := New(testConfig(1 << 16))
	now := sec
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	const rounds = 3
	// Rounds are a barrier: in round 1 both directions of every flow have
	// been seen, whoever won the race to create it.
	var barrier [rounds]sync.WaitGroup
	for r := range barrier {
		barrier[r].Add(2)
	}
	for _, d := range []Dir{Original, Reply} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			passed := 0 // barriers this worker has arrived at
			defer func() {
				for ; passed < rounds; passed++ {
					barrier[passed].Done()
				}
			}()
			var m Meta
			var scratch Conn
			for round := range rounds {
				if round > 0 {
					barrier[round-1].Done()
					passed++
					barrier[round-1].Wait()
				}
				for i := range flows {
					udpMeta(&m, i, d)
					r, err := trackConfirm(tab, &m, now, &scratch)
					if err != nil {
						errs <- err
						return
					}
					if round > 0 && r.State != StateEstablished {
						errs <- errorf("flow %d dir %v round %d: %v", i, d, round, r.State)
						return
					}
				}
			}
		}()
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tab.Expire(now, 512)
			tab.Stats()
			n := 0
			tab.Walk(now, func(Info) bool { n++; return n < 100 })
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := tab.Stats()
	if st.Entries != flows || st.Unreplied != 0 {
		t.Fatalf("%d entries (%d unreplied) for %d flows; clashes %d", st.Entries, st.Unreplied, flows, st.Clashes)
	}
	t.Logf("clashes: %d", st.Clashes)
}

type testError string

func (e testError) Error() string { return string(e) }

func errorf(format string, a ...any) error { return testError(fmt.Sprintf(format, a...)) }

// The per-packet path allocates nothing: Track on an established flow, and
// Track plus Confirm of new flows once the table's slabs exist.
func TestZeroAllocs(t *testing.T) {
	tab := New(testConfig(1 << 14))
	f := newFlow(t, tab, ProtoTCP)
	for _, s := range handshake {
		f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, sec)
	}
	m := f.meta(Original)
	m.Flags, m.Seq, m.Ack, m.Window = TCPAck, 1001, 5001, 502
	if n := testing.AllocsPerRun(1000, func() {
		if r := tab.Track(m, 2*sec, &f.scratch); r.State != StateEstablished {
			t.Fatalf("established: %v", r.State)
		}
	}); n != 0 {
		t.Fatalf("Track on an established flow: %v allocs", n)
	}

	// And the ICMP error path.
	var e Meta
	e.Tuple.SetV4(router, hostA, 0, 0, ProtoICMP)
	e.Tuple.SetICMP(3, 1, 0)
	e.Inner.SetV4(hostA, hostB, 40000, 80, ProtoTCP)
	e.HasInner = true
	if n := testing.AllocsPerRun(1000, func() {
		if r := tab.Track(&e, 2*sec, &f.scratch); r.State != StateRelated {
			t.Fatalf("related: %v", r.State)
		}
	}); n != 0 {
		t.Fatalf("Track of an ICMP error: %v allocs", n)
	}

	var mm Meta
	var scratch Conn
	for i := range 8000 { // grow the slabs, then empty the table
		udpMeta(&mm, i, Original)
		trackConfirm(tab, &mm, sec, &scratch)
	}
	tab.Flush()
	i := 0
	if n := testing.AllocsPerRun(5000, func() {
		udpMeta(&mm, i, Original)
		i++
		if _, err := trackConfirm(tab, &mm, sec, &scratch); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Track+Confirm of a new flow: %v allocs", n)
	}
}

// Expire visits every slot within a bounded number of calls and frees
// exactly the entries past their deadline.
func TestExpireIncremental(t *testing.T) {
	tab := New(testConfig(1 << 12))
	var m Meta
	var scratch Conn
	for i := range 3000 {
		udpMeta(&m, i, Original)
		now := sec
		if i%3 == 0 {
			now = 100 * sec // these live longer
		}
		trackConfirm(tab, &m, now, &scratch)
	}
	freed, calls := 0, 0
	for tab.Len() > 1000 && calls < 1000 {
		freed += tab.Expire(60*sec, 64)
		calls++
	}
	if freed != 2000 || tab.Len() != 1000 {
		t.Fatalf("freed %d in %d calls, %d left", freed, calls, tab.Len())
	}
}

func TestOnRemoveGetsNATHandle(t *testing.T) {
	var got []uint32
	cfg := DefaultConfig()
	cfg.OnRemove = func(n uint32) { got = append(got, n) }
	tab := New(cfg)
	var m Meta
	m.Tuple.SetV4([4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 1}, 1000, 53, ProtoUDP)
	var scratch Conn
	r := tab.Track(&m, 0, &scratch)
	r.Conn.NAT = 7
	if _, err := tab.Confirm(r.Conn, 0); err != nil {
		t.Fatal(err)
	}
	m.Tuple.SrcPort = 1001
	r = tab.Track(&m, 0, &scratch)
	if _, err := tab.Confirm(r.Conn, 0); err != nil { // NAT 0: not reported
		t.Fatal(err)
	}
	tab.Flush()
	if len(got) != 1 || got[0] != 7 {
		t.Errorf("OnRemove calls %v, want [7]", got)
	}
}
