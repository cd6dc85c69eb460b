package conntrack

import "testing"

func TestUDPUnrepliedThenAssured(t *testing.T) {
	to := DefaultTimeouts()
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoUDP)
	f.sport = 53
	now := 50 * sec
	if r := f.udp(Original, now); r.State != StateNew {
		t.Fatalf("first datagram: %v", r.State)
	}
	if got := f.deadline() - now; got != int64(to.UDP) {
		t.Fatalf("unreplied timeout %ds", got/sec)
	}
	now += sec
	if r := f.udp(Original, now); r.State != StateNew || r.Conn != f.conn {
		t.Fatalf("second datagram before any reply: %v, conn %p want %p", r.State, r.Conn, f.conn)
	}
	now += sec / 2
	if r := f.udp(Reply, now); r.State != StateEstablished || r.Dir != Reply {
		t.Fatalf("reply: %v %v", r.State, r.Dir)
	}
	if seen, assured := f.status(); !seen || assured {
		t.Fatalf("after the reply: seen %v assured %v, want seen, not assured", seen, assured)
	}
	// Within 2 s of the first packet: a short exchange, 30 s, not assured.
	if r := f.udp(Original, now); r.State != StateEstablished {
		t.Fatalf("after reply: %v", r.State)
	}
	if _, assured := f.status(); assured || f.deadline()-now != int64(to.UDP) {
		t.Fatalf("early exchange: assured %v timeout %ds", assured, (f.deadline()-now)/sec)
	}
	// Still going 2 s after the first packet: a stream.
	now += 2 * sec
	f.udp(Reply, now)
	if _, assured := f.status(); !assured || f.deadline()-now != int64(to.UDPStream) {
		t.Fatalf("stream: assured %v timeout %ds", assured, (f.deadline()-now)/sec)
	}
	var infos []Info
	tab.Walk(now, func(i Info) bool { infos = append(infos, i); return true })
	if len(infos) != 1 || !infos[0].Assured || infos[0].Unreplied || infos[0].Packets != [2]uint64{3, 2} {
		t.Fatalf("walk: %+v", infos)
	}
	t.Logf("%s", infos[0])
}

func TestUDPTimeout(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoUDP)
	now := 10 * sec
	f.udp(Original, now)
	first := f.conn
	now += 29 * sec
	if r := f.udp(Original, now); r.Conn != first {
		t.Fatal("entry gone before its 30 s timeout")
	}
	now += 30 * sec
	if r := f.udp(Reply, now); r.State != StateNew || r.Dir != Original {
		// The old entry expired: the server's datagram starts a new flow.
		t.Fatalf("after expiry: %v %v", r.State, r.Dir)
	}
	if st := tab.Stats(); st.Entries != 1 || st.Expired != 1 || st.Inserts != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Expire frees an entry nobody looks up again.
	now += 31 * sec
	if n := tab.Expire(now, 1<<20); n != 1 || tab.Len() != 0 {
		t.Fatalf("Expire freed %d, %d left", n, tab.Len())
	}
}

func echo(f *flow, d Dir, typ uint8, id uint16) *Meta {
	m := f.meta(d)
	m.Tuple.SetICMP(typ, 0, id)
	return m
}

func TestICMPEcho(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoICMP)
	now := sec
	echo(f, Original, 8, 7)
	if r := f.track(now); r.State != StateNew {
		t.Fatalf("request: %v", r.State)
	}
	echo(f, Reply, 0, 7)
	if r := f.track(now); r.State != StateEstablished || r.Dir != Reply || r.Conn != f.conn {
		t.Fatalf("reply: %+v", r)
	}
	echo(f, Reply, 0, 8) // another identifier: answers nothing
	if r := f.track(now); r.State != StateInvalid {
		t.Fatalf("reply to unknown id: %v", r.State)
	}
	first := f.conn
	echo(f, Original, 8, 8) // a second ping process: its own entry
	if r := f.track(now); r.State != StateNew || r.Conn == first {
		t.Fatalf("second id: %+v", r)
	}
	echo(f, Original, 9, 0) // router advertisement: not tracked, invalid as in Linux
	if r := f.track(now); r.State != StateInvalid {
		t.Fatalf("type 9: %v", r.State)
	}
	if n := tab.Len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

func TestICMPv6(t *testing.T) {
	tab := New(testConfig(1024))
	var m Meta
	var scratch Conn
	a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	m.Tuple = Tuple{Src: a, Dst: b, Proto: ProtoICMPv6, V6: true}
	m.Tuple.SetICMP(135, 0, 0) // neighbour solicitation
	if r := tab.Track(&m, sec, &scratch); r.State != StateUntracked || r.Conn != nil {
		t.Fatalf("neighbour solicitation: %+v", r)
	}
	m.Tuple.SetICMP(128, 0, 99)
	r := tab.Track(&m, sec, &scratch)
	if r.State != StateNew {
		t.Fatalf("echo request: %v", r.State)
	}
	if _, err := tab.Confirm(r.Conn, sec); err != nil {
		t.Fatal(err)
	}
	m.Tuple = Tuple{Src: b, Dst: a, Proto: ProtoICMPv6, V6: true}
	m.Tuple.SetICMP(129, 0, 99)
	if r := tab.Track(&m, sec, &scratch); r.State != StateEstablished || r.Dir != Reply {
		t.Fatalf("echo reply: %+v", r)
	}
}

// An ICMP error quoting a tracked flow is related to it and changes
// nothing; one quoting an unknown flow is invalid.
func TestICMPErrorRelated(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoTCP)
	now := sec
	for _, s := range handshake {
		f.tcp(s.dir, s.flags, s.seq, s.ack, s.win, s.payload, s.wscale, now)
	}
	before := f.deadline()
	state := f.tcpState()
	pkts := f.conn.pkts

	var m Meta
	var scratch Conn
	errorFrom := func(inner *Tuple) Result {
		m.Reset()
		m.Tuple.SetV4(router, hostA, 0, 0, ProtoICMP)
		m.Tuple.SetICMP(3, 4, 0) // fragmentation needed
		m.Inner, m.HasInner = *inner, true
		return tab.Track(&m, now+5*sec, &scratch)
	}
	var quoted Tuple // what the client sent, as the router quotes it
	quoted.SetV4(hostA, hostB, 40000, 80, ProtoTCP)
	r := errorFrom(&quoted)
	if r.State != StateRelated || r.Conn != f.conn || r.Dir != Reply {
		t.Fatalf("error about the client's segment: %+v", r)
	}
	if f.deadline() != before || f.tcpState() != state || f.conn.pkts != pkts {
		t.Fatal("the ICMP error changed the entry")
	}
	// An error about the server's segment travels towards the server.
	var back Tuple
	back.SetV4(hostB, hostA, 80, 40000, ProtoTCP)
	if r := errorFrom(&back); r.State != StateRelated || r.Dir != Original {
		t.Fatalf("error about the server's segment: %+v", r)
	}
	var unknown Tuple
	unknown.SetV4(hostA, hostB, 40001, 80, ProtoTCP)
	if r := errorFrom(&unknown); r.State != StateInvalid || r.Conn != nil {
		t.Fatalf("error about an unknown flow: %+v", r)
	}
	m.Reset()
	m.Tuple.SetV4(router, hostA, 0, 0, ProtoICMP)
	m.Tuple.SetICMP(11, 0, 0) // time exceeded without its quote
	if r := tab.Track(&m, now, &scratch); r.State != StateInvalid {
		t.Fatalf("error without quote: %v", r.State)
	}
	// A quoted echo request (traceroute -I): related to the ping's entry.
	p := newFlow(t, tab, ProtoICMP)
	echo(p, Original, 8, 4242)
	p.track(now)
	var q Tuple
	q.SetV4(hostA, hostB, 0, 0, ProtoICMP)
	q.SetICMP(8, 0, 4242)
	if r := errorFrom(&q); r.State != StateRelated || r.Conn != p.conn {
		t.Fatalf("error quoting an echo request: %+v", r)
	}
}

func TestTruncatedAndGeneric(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, 47) // GRE: generic tracker, no ports
	f.cport, f.sport = 0, 0
	f.meta(Original)
	f.m.Truncated = true
	if r := f.track(sec); r.State != StateInvalid {
		t.Fatalf("truncated: %v", r.State)
	}
	f.meta(Original)
	if r := f.track(sec); r.State != StateNew {
		t.Fatalf("GRE: %v", r.State)
	}
	f.meta(Reply)
	if r := f.track(2 * sec); r.State != StateEstablished || r.Dir != Reply {
		t.Fatalf("GRE reply: %+v", r)
	}
	if got := f.deadline() - 2*sec; got != int64(DefaultTimeouts().Generic) {
		t.Fatalf("generic timeout %ds", got/sec)
	}
	if st := tab.Stats(); st.Invalid != 1 || st.Other != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// NAT rewrites Reply before Confirm: replies carrying the translated
// tuple find the entry, and a second flow may not claim the same reply
// tuple.
func TestConfirmRewrittenReply(t *testing.T) {
	tab := New(testConfig(1024))
	f := newFlow(t, tab, ProtoUDP)
	f.meta(Original)
	r := tab.Track(&f.m, sec, &f.scratch)
	pub := [4]byte{203, 0, 113, 7}
	r.Conn.Reply.SetV4(hostB, pub, 80, 61000, ProtoUDP)
	r.Conn.NAT = 42
	r.Conn.Mark = 7
	c, err := tab.Confirm(r.Conn, sec)
	if err != nil {
		t.Fatal(err)
	}
	f.m.Reset()
	f.m.Tuple.SetV4(hostB, pub, 80, 61000, ProtoUDP)
	if r := tab.Track(&f.m, 2*sec, &f.scratch); r.Conn != c || r.Dir != Reply || r.NAT != 42 || r.Mark != 7 {
		t.Fatalf("translated reply: %+v", r)
	}
	if d, ok := tab.Lookup(&c.Reply, 2*sec); !ok || d != Reply {
		t.Fatal("Lookup misses the reply tuple")
	}
	g := newFlow(t, tab, ProtoUDP)
	g.cport = 40001
	g.meta(Original)
	r = tab.Track(&g.m, sec, &g.scratch)
	r.Conn.Reply.SetV4(hostB, pub, 80, 61000, ProtoUDP)
	if _, err := tab.Confirm(r.Conn, sec); err != ErrReplyTaken {
		t.Fatalf("second flow on a taken reply tuple: %v", err)
	}
	tab.SetMark(c, 9)
	f.m.Reset()
	f.m.Tuple.SetV4(hostA, hostB, 40000, 80, ProtoUDP)
	if r := tab.Track(&f.m, 2*sec, &f.scratch); r.Mark != 9 {
		t.Fatalf("mark %d after SetMark", r.Mark)
	}
}

// Both ends send a SYN at once from two workers (a TCP hole punch): the
// second Confirm loses the race, and its SYN becomes the entry's reply-side
// SYN, as if it had been tracked after the first.
func TestConfirmClashSimultaneousOpen(t *testing.T) {
	tab := New(testConfig(1024))
	var ma, mb Meta
	var sa, sb Conn
	ma.Tuple.SetV4(hostA, hostB, 40000, 80, ProtoTCP)
	ma.Flags, ma.Seq, ma.Window, ma.WScale, ma.HasWScale = syn, 1000, 64240, 7, true
	mb.Tuple.SetV4(hostB, hostA, 80, 40000, ProtoTCP)
	mb.Flags, mb.Seq, mb.Window, mb.WScale, mb.HasWScale = syn, 5000, 65160, 7, true
	if r := tab.Track(&ma, sec, &sa); r.State != StateNew || r.Conn != &sa {
		t.Fatalf("client SYN: %+v", r)
	}
	if r := tab.Track(&mb, sec, &sb); r.State != StateNew || r.Conn != &sb {
		t.Fatalf("server SYN: %+v", r)
	}
	ca, err := tab.Confirm(&sa, sec)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := tab.Confirm(&sb, sec)
	if err != nil || cb != ca {
		t.Fatalf("losing Confirm: %p %v, want the winner %p", cb, err, ca)
	}
	if st := tab.Stats(); st.Clashes != 1 || st.Entries != 1 || st.TCPStates["SYN_SENT2"] != 1 || st.Unreplied != 0 {
		t.Fatalf("after the clash: %+v", st)
	}
	// The handshake goes on as a simultaneous open.
	ma.Flags, ma.Ack = synack, 5001
	if r := tab.Track(&ma, sec, &sa); r.State != StateEstablished || r.Conn != ca {
		t.Fatalf("client SYN/ACK: %+v", r)
	}
	mb.Flags, mb.Ack = synack, 1001
	if r := tab.Track(&mb, sec, &sb); r.State != StateEstablished {
		t.Fatalf("server SYN/ACK: %+v", r)
	}
	ma.Flags, ma.Seq, ma.Ack, ma.Window, ma.HasWScale = ack, 1001, 5001, 502, false
	if r := tab.Track(&ma, sec, &sa); r.State != StateEstablished {
		t.Fatalf("client ACK: %+v", r)
	}
	if st := tab.Stats(); st.TCPStates["ESTABLISHED"] != 1 {
		t.Fatalf("not established: %+v", st.TCPStates)
	}
}

// An ICMP error about a NATed flow quotes the translated packet; it is
// found by the inverse of the quote, which is the rewritten Reply tuple.
func TestICMPErrorThroughNAT(t *testing.T) {
	tab := New(testConfig(1024))
	var m Meta
	var scratch Conn
	pub := [4]byte{203, 0, 113, 7}
	m.Tuple.SetV4(hostA, hostB, 40000, 33434, ProtoUDP)
	r := tab.Track(&m, sec, &scratch)
	r.Conn.Reply.SetV4(hostB, pub, 33434, 61000, ProtoUDP) // SNAT to pub:61000
	c, err := tab.Confirm(r.Conn, sec)
	if err != nil {
		t.Fatal(err)
	}
	m.Reset()
	m.Tuple.SetV4(router, pub, 0, 0, ProtoICMP)
	m.Tuple.SetICMP(11, 0, 0)
	m.Inner.SetV4(pub, hostB, 61000, 33434, ProtoUDP) // the datagram as it left ferry
	m.HasInner = true
	if r := tab.Track(&m, 2*sec, &scratch); r.State != StateRelated || r.Conn != c || r.Dir != Reply {
		t.Fatalf("time exceeded through NAT: %+v", r)
	}
}
