package conntrack

import "testing"

// seg is one TCP segment of a scripted exchange and what must follow it.
type seg struct {
	dir     Dir
	flags   uint8
	seq     uint32
	ack     uint32
	win     uint16
	payload uint32
	wscale  int // -1: no option
	want    CtState
	state   string // the entry's TCP state after the segment
}

const (
	syn    = TCPSyn
	synack = TCPSyn | TCPAck
	ack    = TCPAck
	finack = TCPFin | TCPAck
	rst    = TCPRst
	rstack = TCPRst | TCPAck
)

// handshake is a client at ISN 1000 and a server at ISN 5000, both
// offering window scale 7.
var handshake = []seg{
	{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
	{Reply, synack, 5000, 1001, 65160, 0, 7, StateEstablished, "SYN_RECV"},
	{Original, ack, 1001, 5001, 502, 0, -1, StateEstablished, "ESTABLISHED"},
}

func script(segs ...[]seg) []seg {
	var all []seg
	for _, s := range segs {
		all = append(all, s...)
	}
	return all
}

func TestTCPStateMachine(t *testing.T) {
	tests := []struct {
		name    string
		loose   bool
		liberal bool
		segs    []seg
	}{
		{name: "handshake, data, FIN from client then server", segs: script(handshake, []seg{
			{Original, ack | TCPPsh, 1001, 5001, 502, 100, -1, StateEstablished, "ESTABLISHED"},
			{Reply, ack, 5001, 1101, 509, 0, -1, StateEstablished, "ESTABLISHED"},
			{Reply, ack, 5001, 1101, 509, 1400, -1, StateEstablished, "ESTABLISHED"},
			{Original, ack, 1101, 6401, 502, 0, -1, StateEstablished, "ESTABLISHED"},
			{Original, finack, 1101, 6401, 502, 0, -1, StateEstablished, "FIN_WAIT"},
			{Reply, ack, 6401, 1102, 509, 0, -1, StateEstablished, "CLOSE_WAIT"},
			{Reply, finack, 6401, 1102, 509, 0, -1, StateEstablished, "LAST_ACK"},
			{Original, ack, 1102, 6402, 502, 0, -1, StateEstablished, "TIME_WAIT"},
		})},
		{name: "FIN from server first", segs: script(handshake, []seg{
			{Reply, finack, 5001, 1001, 509, 0, -1, StateEstablished, "FIN_WAIT"},
			{Original, finack, 1001, 5002, 502, 0, -1, StateEstablished, "LAST_ACK"},
			{Reply, ack, 5002, 1002, 509, 0, -1, StateEstablished, "TIME_WAIT"},
		})},
		{name: "RST in window closes", segs: script(handshake, []seg{
			{Reply, rst, 5001, 0, 0, 0, -1, StateEstablished, "CLOSE"},
		})},
		{name: "RST out of window is invalid and changes nothing", segs: script(handshake, []seg{
			{Reply, rst, 5001 + 50_000_000, 0, 0, 0, -1, StateInvalid, "ESTABLISHED"},
			{Original, ack, 1001, 5001, 502, 0, -1, StateEstablished, "ESTABLISHED"},
		})},
		{name: "RST answering the SYN (seq 0)", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
			{Reply, rstack, 0, 1001, 0, 0, -1, StateEstablished, "CLOSE"},
		}},
		{name: "simultaneous open", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, -1, StateNew, "SYN_SENT"},
			{Reply, syn, 5000, 0, 65160, 0, -1, StateEstablished, "SYN_SENT2"},
			{Original, synack, 1000, 5001, 64240, 0, -1, StateEstablished, "SYN_RECV"},
			{Reply, synack, 5000, 1001, 65160, 0, -1, StateEstablished, "SYN_RECV"},
			{Original, ack, 1001, 5001, 64240, 0, -1, StateEstablished, "ESTABLISHED"},
		}},
		{name: "retransmitted SYN stays new", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
		}},
		{name: "ACK before SYN/ACK is ignored", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
			{Reply, ack, 5000, 1001, 65160, 0, -1, StateEstablished, "SYN_SENT"},
		}},
		{name: "client ACK without SYN/ACK is invalid", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
			{Original, ack, 1001, 5001, 502, 0, -1, StateInvalid, "SYN_SENT"},
		}},
		{name: "data beyond the window is invalid", segs: script(handshake, []seg{
			{Original, ack, 1001 + 10_000_000, 5001, 502, 100, -1, StateInvalid, "ESTABLISHED"},
			{Original, ack, 1001, 5001 + 10_000, 502, 0, -1, StateInvalid, "ESTABLISHED"}, // acks unsent data
			{Original, ack, 1001, 5001, 502, 0, -1, StateEstablished, "ESTABLISHED"},
		})},
		{name: "data older than a window is invalid", segs: script(handshake, []seg{
			{Original, ack, 1001 + (1<<32 - 2_000_000), 5001, 502, 100, -1, StateInvalid, "ESTABLISHED"},
		})},
		{name: "be_liberal accepts out of window", liberal: true, segs: script(handshake, []seg{
			{Original, ack, 1001 + 10_000_000, 5001, 502, 100, -1, StateEstablished, "ESTABLISHED"},
		})},
		{name: "FIN before SYN/ACK is invalid", segs: []seg{
			{Original, syn, 1000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
			{Original, finack, 1001, 0, 502, 0, -1, StateInvalid, "SYN_SENT"},
		}},
		{name: "mid-stream pickup with loose", loose: true, segs: []seg{
			{Original, ack, 777777, 888888, 502, 100, -1, StateNew, "ESTABLISHED"},
			{Reply, ack, 888888, 777877, 509, 0, -1, StateEstablished, "ESTABLISHED"},
			{Original, ack, 777877, 888888, 502, 0, -1, StateEstablished, "ESTABLISHED"},
		}},
		{name: "mid-stream ACK without loose is invalid", segs: []seg{
			{Original, ack, 777777, 888888, 502, 100, -1, StateInvalid, "-"},
		}},
		{name: "FIN as first packet is invalid", loose: true, segs: []seg{
			{Original, finack, 777777, 888888, 502, 0, -1, StateInvalid, "-"},
		}},
		{name: "SYN+FIN is invalid", segs: []seg{
			{Original, syn | TCPFin, 1000, 0, 64240, 0, -1, StateInvalid, "-"},
		}},
		{name: "SYN after close reopens", segs: script(handshake, []seg{
			{Original, finack, 1001, 5001, 502, 0, -1, StateEstablished, "FIN_WAIT"},
			{Reply, finack, 5001, 1002, 509, 0, -1, StateEstablished, "LAST_ACK"},
			{Original, ack, 1002, 5002, 502, 0, -1, StateEstablished, "TIME_WAIT"},
			{Original, syn, 90000, 0, 64240, 0, 7, StateNew, "SYN_SENT"},
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(1024)
			cfg.TCPLoose, cfg.TCPBeLiberal = tc.loose, tc.liberal
			f := newFlow(t, New(cfg), ProtoTCP)
			now := 100 * sec
			for i, s := range tc.segs {
				now += sec / 100
				r := f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, now)
				if r.State != s.want {
					t.Fatalf("segment %d (%+v): state %v, want %v", i, s, r.State, s.want)
				}
				if (r.Conn == nil) != (s.want == StateInvalid) {
					t.Fatalf("segment %d: Conn %p with state %v", i, r.Conn, r.State)
				}
				if r.Conn != nil && r.Dir != s.dir {
					t.Fatalf("segment %d: dir %v, want %v", i, r.Dir, s.dir)
				}
				if got := f.tcpState(); got != s.state {
					t.Fatalf("segment %d (%+v): TCP state %s, want %s", i, s, got, s.state)
				}
			}
		})
	}
}

// Window scaling: the server offers window field 512 with scale 7 (64 KiB);
// a segment 60,000 bytes ahead fits only if the scale was honoured, and
// the scale applies only when both sides sent the option.
func TestTCPWindowScaling(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cliWS, srvWS int
		want         CtState
	}{
		{"both scale", 7, 7, StateEstablished},
		{"server does not scale", 7, -1, StateInvalid},
		{"client does not scale", -1, 7, StateInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(t, New(testConfig(1024)), ProtoTCP)
			now := sec
			steps := []seg{
				{Original, syn, 1000, 0, 64240, 0, tc.cliWS, StateNew, ""},
				{Reply, synack, 5000, 1001, 512, 0, tc.srvWS, StateEstablished, ""},
				{Original, ack, 1001, 5001, 502, 0, -1, StateEstablished, ""},
				{Reply, ack, 5001, 1001, 512, 0, -1, StateEstablished, ""},
				{Original, ack, 1001 + 60000, 5001, 502, 1000, -1, tc.want, ""},
			}
			for i, s := range steps {
				now += sec
				if r := f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, now); r.State != s.want {
					t.Fatalf("segment %d: %v, want %v", i, r.State, s.want)
				}
			}
		})
	}
}

// Timeouts follow the state: 120 s in SYN_SENT, 5 days once established,
// 300 s while data is unacknowledged, 120 s in TIME_WAIT, and an entry
// whose first answer is a RST goes at once.
func TestTCPTimeouts(t *testing.T) {
	to := DefaultTimeouts()
	f := newFlow(t, New(testConfig(1024)), ProtoTCP)
	now := 1000 * sec
	check := func(what string, want int64) {
		t.Helper()
		if got := f.deadline() - now; got != want {
			t.Fatalf("%s: timeout %ds, want %ds", what, got/sec, want/sec)
		}
	}
	f.tcp(Original, syn, 1000, 0, 64240, 0, 7, now)
	check("SYN_SENT", int64(to.TCPSynSent))
	now += sec
	f.tcp(Reply, synack, 5000, 1001, 65160, 0, 7, now)
	check("SYN_RECV", int64(to.TCPSynRecv))
	now += sec
	f.tcp(Original, ack, 1001, 5001, 502, 0, -1, now)
	check("ESTABLISHED", int64(to.TCPEstablished))
	if _, assured := f.status(); !assured {
		t.Fatal("not ASSURED after the handshake")
	}
	now += sec
	f.tcp(Original, ack, 1001, 5001, 502, 100, -1, now)
	check("unacknowledged data", int64(to.TCPUnacknowledged))
	now += sec
	f.tcp(Reply, ack, 5001, 1101, 509, 0, -1, now)
	check("data acknowledged", int64(to.TCPEstablished))
	f.tcp(Original, finack, 1101, 5001, 502, 0, -1, now)
	f.tcp(Reply, finack, 5001, 1102, 509, 0, -1, now)
	f.tcp(Original, ack, 1102, 5002, 502, 0, -1, now)
	check("TIME_WAIT", int64(to.TCPTimeWait))
	// Past the timeout the entry is gone: a new SYN starts a new flow.
	now += int64(to.TCPTimeWait) + sec
	f.conn = nil
	if r := f.tcp(Original, syn, 9000, 0, 64240, 0, 7, now); r.State != StateNew {
		t.Fatalf("SYN after TIME_WAIT expiry: %v", r.State)
	}

	g := newFlow(t, f.tab, ProtoTCP)
	g.cport = 40001
	g.tcp(Original, syn, 1000, 0, 64240, 0, 7, now)
	g.tcp(Reply, rstack, 0, 1001, 0, 0, -1, now)
	if g.deadline() != now {
		t.Fatalf("entry refused by RST lives until %d, want now", g.deadline())
	}
	g.conn = nil
	if r := g.tcp(Original, syn, 1000, 0, 64240, 0, 7, now+1); r.State != StateNew {
		t.Fatalf("SYN after refusal: %v", r.State)
	}
}

// Walk and Stats show a TCP entry as conntrack -L does.
func TestTCPInfo(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoTCP)
	for _, s := range handshake {
		f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, sec)
	}
	tab.SetMark(f.conn, 5)
	var got []Info
	tab.Walk(2*sec, func(i Info) bool { got = append(got, i); return true })
	if len(got) != 1 {
		t.Fatalf("walk: %d entries", len(got))
	}
	i := got[0]
	want := "tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 packets=2 " +
		"src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 packets=1 [ASSURED] mark=5"
	if s := i.String(); s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
	st := tab.Stats()
	if st.TCP != 1 || st.TCPStates["ESTABLISHED"] != 1 || st.Assured != 1 || st.Inserts != 1 {
		t.Fatalf("stats %+v", st)
	}
}
