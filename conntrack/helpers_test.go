package conntrack

import (
	"testing"
	"time"
)

// Addresses from the documentation ranges only.
var (
	hostA  = [4]byte{192, 0, 2, 10}
	hostB  = [4]byte{198, 51, 100, 20}
	router = [4]byte{203, 0, 113, 1}
)

const sec = int64(time.Second)

// flow is one connection between a client (Original) and a server (Reply)
// in a test, with the worker state a dataplane worker would own.
type flow struct {
	t       *testing.T
	tab     *Table
	cli     [4]byte
	srv     [4]byte
	cport   uint16
	sport   uint16
	proto   uint8
	m       Meta
	scratch Conn
	conn    *Conn // the confirmed entry, once there is one
}

func newFlow(t *testing.T, tab *Table, proto uint8) *flow {
	return &flow{t: t, tab: tab, cli: hostA, srv: hostB, cport: 40000, sport: 80, proto: proto}
}

// meta fills the worker's Meta for a packet in direction d.
func (f *flow) meta(d Dir) *Meta {
	f.m.Reset()
	if d == Original {
		f.m.Tuple.SetV4(f.cli, f.srv, f.cport, f.sport, f.proto)
	} else {
		f.m.Tuple.SetV4(f.srv, f.cli, f.sport, f.cport, f.proto)
	}
	return &f.m
}

// track runs Track and, for a new flow, Confirm, as a worker does for an
// accepted packet.
func (f *flow) track(now int64) Result {
	r := f.tab.Track(&f.m, now, &f.scratch)
	if r.State == StateNew && r.Conn == &f.scratch {
		c, err := f.tab.Confirm(r.Conn, now)
		if err != nil {
			f.t.Fatalf("Confirm: %v", err)
		}
		r.Conn = c
		f.conn = c
	}
	return r
}

// tcp sends one TCP segment in direction d.
func (f *flow) tcp(d Dir, flags uint8, seq, ack uint32, win uint16, payload uint32, wscale int, now int64) Result {
	m := f.meta(d)
	m.Flags, m.Seq, m.Ack, m.Window, m.Payload = flags, seq, ack, win, payload
	if wscale >= 0 {
		m.WScale, m.HasWScale = uint8(wscale), true
	}
	return f.track(now)
}

// udp sends one datagram in direction d.
func (f *flow) udp(d Dir, now int64) Result {
	f.meta(d)
	f.m.Payload = 100
	return f.track(now)
}

// tcpState reads the entry's TCP state name.
func (f *flow) tcpState() string {
	if f.conn == nil {
		return "-"
	}
	f.conn.mu.Lock()
	defer f.conn.mu.Unlock()
	if !f.conn.live {
		return "gone"
	}
	return tcpStateNames[f.conn.state]
}

func (f *flow) status() (seenReply, assured bool) {
	f.conn.mu.Lock()
	defer f.conn.mu.Unlock()
	return f.conn.status&stSeenReply != 0, f.conn.status&stAssured != 0
}

func (f *flow) deadline() int64 { return f.conn.deadline.Load() }

func testConfig(capacity int) Config {
	c := DefaultConfig()
	c.Capacity = capacity
	return c
}
