package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/config"
)

// Pipeline tests for the IPv4 router requirements: options, broadcasts,
// redirects, rp_filter, reassembly, resets. The rig is pipeline_test's:
// A 192.0.2.2 on r0 192.0.2.1/24, B 198.51.100.2 on r1 198.51.100.1/24.

func setPort(i int, f func(*config.Interface)) func(*config.Config) {
	return func(c *config.Config) { f(&c.Interfaces[i]) }
}

func TestForwardStampsRecordRouteAndTimestamp(t *testing.T) {
	g := newRig(t, nil)
	s := aToB(64, udpPayload(20))
	// RR with room for 2, TS flag 1 with room for 1 (40 bytes is the limit).
	s.options = []byte{0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x44, 12, 5, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}
	before := time.Now().UTC()
	g.w.now = before // the worker's clock, read once a batch by run()
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("sent %d, drops %v", len(out), g.drops(0))
	}
	ip := checkIPv4(t, out[0])
	if addr(ip[23:]) != ipR1 || ip[22] != 8 {
		t.Errorf("record route: % x, want 198.51.100.1 first and pointer 8", ip[20:31])
	}
	if addr(ip[36:]) != ipR1 || ip[34] != 13 {
		t.Errorf("timestamp: % x, want the egress address and pointer 13", ip[32:44])
	}
	ms := binary.BigEndian.Uint32(ip[40:])
	if want := msSinceMidnightUT(before); ms+1000 < want || ms > want+1000 {
		t.Errorf("timestamp %d ms, now is %d", ms, want)
	}
}

func TestBadOptionsGetParameterProblem(t *testing.T) {
	g := newRig(t, nil)
	s := aToB(64, udpPayload(20))
	s.options = []byte{0x07, 7, 2, 0, 0, 0, 0, 0} // pointer 2: below 4
	g.run(0, s.frame())
	if n := len(g.sent(1)); n != 0 {
		t.Fatalf("forwarded %d packets with bad options", n)
	}
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("sent %d errors, want 1", len(out))
	}
	typ, code, src, m := icmpErrorFrom(t, out[0])
	if typ != icmpParamProblem || code != 0 || m[4] != 22 || src != ipR0 {
		t.Errorf("ICMP %d/%d pointer %d from %v, want 12/0 pointer 22 from %v", typ, code, m[4], src, ipR0)
	}
	if g.drops(0)["ip_bad_options"] != 1 {
		t.Errorf("drops %v", g.drops(0))
	}
}

func TestSourceRouteDroppedByDefault(t *testing.T) {
	g := newRig(t, nil)
	s := aToB(64, udpPayload(20))
	s.dst = ipR0
	s.options = []byte{0x83, 7, 4, 198, 51, 100, 2, 0}
	g.run(0, s.frame())
	if len(g.sent(0))+len(g.sent(1)) != 0 || g.drops(0)["source_route"] != 1 {
		t.Errorf("source-routed packet not dropped silently: drops %v", g.drops(0))
	}
}

func TestSourceRouteAccepted(t *testing.T) {
	g := newRig(t, setPort(0, func(i *config.Interface) { i.AcceptSourceRoute = true }))
	s := aToB(64, udpPayload(20))
	s.dst = ipR0 // the first hop of the route is ferry
	s.options = []byte{0x89, 7, 4, 198, 51, 100, 2, 0}
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("sent %d on r1, drops %v", len(out), g.drops(0))
	}
	ip := checkIPv4(t, out[0])
	if addr(ip[16:]) != ipB || addr(ip[23:]) != ipR1 || ip[22] != 8 {
		t.Errorf("dst %v, route % x: want dst B and the slot holding 198.51.100.1", addr(ip[16:]), ip[20:28])
	}
	// Strict, next address not a neighbour: source route failed.
	g2 := newRig(t, func(c *config.Config) {
		c.Interfaces[0].AcceptSourceRoute = true
		c.Routes = []config.Route{{Prefix: pfx("203.0.113.0/24"), Via: ipB, Table: config.TableMain}}
	})
	s.options = []byte{0x89, 7, 4, 203, 0, 113, 9, 0}
	g2.run(0, s.frame())
	back := g2.sent(0)
	if len(back) != 1 {
		t.Fatalf("strict route via a gateway: sent %d back, drops %v", len(back), g2.drops(0))
	}
	if typ, code, _, _ := icmpErrorFrom(t, back[0]); typ != icmpDestUnreachable || code != icmpSourceRouteFailed {
		t.Errorf("ICMP %d/%d, want 3/5", typ, code)
	}
}

func TestDirectedBroadcast(t *testing.T) {
	bc := netip.MustParseAddr("198.51.100.255")
	g := newRig(t, func(c *config.Config) { c.Neighbors = c.Neighbors[:1] }) // nothing known on r1: ARP would show
	s := aToB(64, udpPayload(20))
	s.dst = bc
	g.run(0, s.frame())
	if out := g.sent(1); len(out) != 0 {
		t.Fatalf("sent %d frames on r1 (ARP or the broadcast), want none", len(out))
	}
	if g.drops(0)["directed_broadcast"] != 1 {
		t.Errorf("drops %v", g.drops(0))
	}
	// The limited broadcast and the ingress network's own: dropped at input.
	s.dst = netip.MustParseAddr("255.255.255.255")
	f1 := s.frame()
	s.dst = netip.MustParseAddr("192.0.2.255")
	g.run(0, f1, s.frame())
	if g.drops(0)["broadcast_not_forwarded"] != 2 || len(g.sent(1)) != 0 {
		t.Errorf("drops %v", g.drops(0))
	}

	g = newRig(t, setPort(0, func(i *config.Interface) { i.BCForwarding = true }))
	s.dst = bc
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) != 1 || !bytes.Equal(out[0][0:6], broadcastMAC[:]) {
		t.Fatalf("bc_forwarding: sent %d, want one Ethernet broadcast; drops %v", len(out), g.drops(0))
	}
}

// redirectRig: a second router G 192.0.2.3 on A's network routes
// 203.0.113.0/24; A sends to it through ferry.
func redirectRig(t *testing.T, send bool) *rig {
	macG := [6]byte{2, 0, 0, 0, 0, 0x6}
	return newRig(t, func(c *config.Config) {
		c.Interfaces[0].SendRedirects = send
		c.Neighbors = append(c.Neighbors, config.Neighbor{IP: ipA2, MAC: macG[:], Dev: "r0"})
		c.Routes = []config.Route{{Prefix: pfx("203.0.113.0/24"), Via: ipA2, Table: config.TableMain}}
	})
}

func TestRedirect(t *testing.T) {
	g := redirectRig(t, true)
	g.r.workers[0].now = time.Now()
	g.run(0, udpFlow(ipA, 1000), udpFlow(ipA, 1001))
	out := g.sent(0)
	var redirects, forwarded int
	for _, f := range out {
		ip := checkIPv4(t, f)
		if ip[9] == protoICMP {
			typ, code, src, m := icmpErrorFrom(t, f)
			if typ != icmpRedirect || code != icmpRedirectHost || src != ipR0 || addr(m[4:]) != ipA2 || addr(ip[16:]) != ipA {
				t.Errorf("redirect %d/%d from %v gateway %v to %v", typ, code, src, addr(m[4:]), addr(ip[16:]))
			}
			if addr(m[8+16:]) != ipX {
				t.Errorf("quote is not the packet redirected")
			}
			redirects++
		} else {
			if addr(ip[16:]) != ipX || ip[8] != 63 {
				t.Errorf("forwarded packet dst %v ttl %d", addr(ip[16:]), ip[8])
			}
			forwarded++
		}
	}
	// Two packets within 20 ms: one redirect (Linux's redirect_load), both forwarded.
	if redirects != 1 || forwarded != 2 {
		t.Errorf("%d redirects and %d forwarded, want 1 and 2", redirects, forwarded)
	}

	g = redirectRig(t, false)
	g.run(0, udpFlow(ipA, 1000))
	if out := g.sent(0); len(out) != 1 || checkIPv4(t, out[0])[9] != protoUDP {
		t.Errorf("send_redirects off: sent %d frames, want the packet alone", len(out))
	}
}

func TestRedirectLimiter(t *testing.T) {
	var r redirectLimiter
	now := time.Unix(1000, 0)
	sent := 0
	for i := 0; i < 2000; i++ { // 20 s of a packet a millisecond
		if r.allow(1, now) {
			sent++
		}
		now = now.Add(10 * time.Millisecond)
	}
	if sent != redirectNumber {
		t.Errorf("sent %d redirects to a persistent host, want %d", sent, redirectNumber)
	}
	if !r.allow(1, now.Add(redirectSilence+time.Second)) {
		t.Error("no redirect after a silence")
	}
}

func TestRPFilter(t *testing.T) {
	// From B's port with A's network as source: spoofed.
	spoof := pktSpec{srcMAC: macB, dstMAC: macR1, src: netip.MustParseAddr("192.0.2.50"), dst: ipA, proto: protoUDP, ttl: 64, payload: udpPayload(20)}
	unrouted := spoof
	unrouted.src = netip.MustParseAddr("203.0.113.9")
	good := spoof
	good.src = ipB
	for _, tc := range []struct {
		mode                     int
		spoofOK, unroutedOK, gOK bool
	}{
		{0, true, true, true},
		{1, false, false, true},
		{2, true, false, true},
	} {
		g := newRig(t, setPort(1, func(i *config.Interface) { i.RPFilter = tc.mode }))
		for _, c := range []struct {
			s  pktSpec
			ok bool
		}{{spoof, tc.spoofOK}, {unrouted, tc.unroutedOK}, {good, tc.gOK}} {
			g.run(1, c.s.frame())
			got := len(g.sent(0)) == 1
			if got != c.ok {
				t.Errorf("rp_filter %d, source %v: forwarded %v, want %v (drops %v)", tc.mode, c.s.src, got, c.ok, g.drops(1))
			}
		}
		want := uint64(0)
		if tc.mode == 1 {
			want = 2
		} else if tc.mode == 2 {
			want = 1
		}
		if g.drops(1)["rp_filter"] != want {
			t.Errorf("rp_filter %d: drops %v, want rp_filter=%d", tc.mode, g.drops(1), want)
		}
	}
}

func tcpSegment(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags header.TCPFlags, data int) []byte {
	b := make([]byte, 20+data)
	t := header.TCP(b)
	t.SetSourcePort(sport)
	t.SetDestinationPort(dport)
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetDataOffset(20)
	t.SetFlags(uint8(flags))
	t.SetWindowSize(64240)
	t.SetChecksum(^checksum.Checksum(b, tcpPseudoSum(ip4(src), ip4(dst), len(b))))
	return b
}

func TestTCPResetFromClosedPort(t *testing.T) {
	g := newRig(t, nil)
	syn := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR1, proto: protoTCP, ttl: 64,
		payload: tcpSegment(ipA, ipR1, 40000, 22, 1000, 0, header.TCPFlagSyn, 0)}
	ackSeg := syn
	ackSeg.payload = tcpSegment(ipA, ipR1, 40001, 22, 5, 777, header.TCPFlagAck, 10)
	rst := syn
	rst.payload = tcpSegment(ipA, ipR1, 40002, 22, 5, 0, header.TCPFlagRst, 0)
	g.run(0, syn.frame(), ackSeg.frame(), rst.frame())
	out := g.sent(0)
	if len(out) != 2 {
		t.Fatalf("sent %d resets, want 2 (none for the RST); drops %v", len(out), g.drops(0))
	}
	for i, f := range out {
		ip := checkIPv4(t, f)
		if addr(ip[12:]) != ipR1 || addr(ip[16:]) != ipA || ip[9] != protoTCP || len(ip) != 40 {
			t.Fatalf("reset %d: % x", i, ip)
		}
		seg := header.TCP(ip[20:])
		if checksum.Checksum(seg, tcpPseudoSum(ip4(ipR1), ip4(ipA), 20)) != 0xffff {
			t.Errorf("reset %d: bad TCP checksum", i)
		}
		if seg.SourcePort() != 22 {
			t.Errorf("reset %d from port %d", i, seg.SourcePort())
		}
		switch seg.DestinationPort() {
		case 40000: // to the SYN: seq 0, ACK of SYN+1
			if seg.Flags() != header.TCPFlagRst|header.TCPFlagAck || seg.SequenceNumber() != 0 || seg.AckNumber() != 1001 {
				t.Errorf("reset to SYN: flags %v seq %d ack %d", seg.Flags(), seg.SequenceNumber(), seg.AckNumber())
			}
		case 40001: // to an ACK: seq = its ack, no ACK
			if seg.Flags() != header.TCPFlagRst || seg.SequenceNumber() != 777 {
				t.Errorf("reset to ACK: flags %v seq %d", seg.Flags(), seg.SequenceNumber())
			}
		default:
			t.Errorf("reset to port %d", seg.DestinationPort())
		}
	}
	if d := g.drops(0); d["local_tcp_closed"] != 2 || d["local_protocol_unsupported"] != 1 {
		t.Errorf("drops %v", d)
	}
}

// fragments cuts the IP packet of frame f into fragments of at most size
// payload bytes (a multiple of 8), returned as frames.
func fragments(f []byte, size int) [][]byte {
	ip := header.IPv4(f[14:])
	ihl := int(ip.HeaderLength())
	data := ip[ihl:]
	var out [][]byte
	for off := 0; off < len(data); off += size {
		n := min(size, len(data)-off)
		b := make([]byte, 14+ihl+n)
		copy(b, f[:14+ihl])
		copy(b[14+ihl:], data[off:off+n])
		h := header.IPv4(b[14:])
		h.SetTotalLength(uint16(ihl + n))
		var flags uint8
		if off+n < len(data) {
			flags = header.IPv4FlagMoreFragments
		}
		h.SetFlagsFragmentOffset(flags, uint16(off))
		setHeaderChecksum(h)
		out = append(out, b)
	}
	return out
}

// joinReply reassembles what ferry sent back (its echo reply, fragmented
// for r0's MTU of 1500) and returns the ICMP message.
func joinReply(t *testing.T, frames [][]byte) []byte {
	t.Helper()
	var msg []byte
	for _, f := range frames {
		ip := checkIPv4(t, f)
		off := int(binary.BigEndian.Uint16(ip[6:])&0x1fff) * 8
		if need := off + len(ip) - 20; need > len(msg) {
			msg = append(msg, make([]byte, need-len(msg))...)
		}
		copy(msg[off:], ip[20:])
	}
	return msg
}

func bigEcho(n int) pktSpec {
	return pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoICMP, ttl: 64, id: 99, payload: echoRequest(n)}
}

func TestReassemblyEcho(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		order func([][]byte) [][]byte
	}{
		{"in order", 3000, func(f [][]byte) [][]byte { return f }},
		{"reversed", 3000, func(f [][]byte) [][]byte {
			for i, j := 0, len(f)-1; i < j; i, j = i+1, j-1 {
				f[i], f[j] = f[j], f[i]
			}
			return f
		}},
		{"middle last", 5000, func(f [][]byte) [][]byte { return append(append(f[:1:1], f[2:]...), f[1]) }},
		{"65000 bytes", 65000, func(f [][]byte) [][]byte { return f }},
	} {
		for _, views := range []bool{false, true} {
			name := tc.name
			if views {
				name += ", fragments in RX slot views" // as AF_PACKET hands them out
			}
			t.Run(name, func(t *testing.T) {
				g := newRig(t, nil)
				g.links[0].queues[0].views = views
				s := bigEcho(tc.size)
				frags := tc.order(fragments(s.frame(), 1480))
				for _, f := range frags { // one a batch, as they would come
					g.run(0, f)
				}
				msg := joinReply(t, g.sent(0))
				if len(msg) != 8+tc.size || msg[0] != icmpEchoReply || !bytes.Equal(msg[8:], s.payload[8:]) {
					t.Fatalf("reply of %d bytes type %d; drops %v", len(msg), msg[0], g.drops(0))
				}
				if checksum.Checksum(msg, 0) != 0xffff {
					t.Error("reply checksum")
				}
				if n, _ := g.w.ra.held(); n != 0 {
					t.Errorf("%d datagrams still held", n)
				}
			})
		}
	}
}

func TestReassemblyOverlapAndDuplicate(t *testing.T) {
	g := newRig(t, nil)
	f := fragments(bigEcho(3000).frame(), 1480)
	g.run(0, f[0], f[0]) // an exact repeat: dropped alone
	if d := g.drops(0)["reassembly_overlap"]; d != 1 {
		t.Fatalf("duplicate: drops %v", g.drops(0))
	}
	// A fragment at offset 8 overlaps the first: the datagram goes.
	o := fragments(bigEcho(3000).frame(), 1480)[0]
	h := header.IPv4(o[14:])
	h.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 8)
	setHeaderChecksum(h)
	g.run(0, o, f[1], f[2])
	if len(g.sent(0)) != 0 {
		t.Error("answered a datagram with overlapping fragments")
	}
	if d := g.drops(0)["reassembly_overlap"]; d != 2 {
		t.Errorf("drops %v", g.drops(0))
	}
}

func TestReassemblyTimeout(t *testing.T) {
	g := newRig(t, nil)
	f := fragments(bigEcho(3000).frame(), 1480)
	start := time.Now()
	g.w.now = start
	g.run(0, f[0])
	g.run(0, fragments(pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoUDP, ttl: 64, id: 5, payload: udpPayload(3000)}.frame(), 1480)[2])
	g.w.now = start.Add(29 * time.Second)
	g.w.reasmIdle()
	if len(g.sent(0)) != 0 {
		t.Fatal("expired before 30 s")
	}
	g.w.now = start.Add(31 * time.Second)
	g.w.reasmIdle()
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("sent %d, want one time exceeded (only one datagram had its first fragment)", len(out))
	}
	typ, code, src, m := icmpErrorFrom(t, out[0])
	if typ != icmpTimeExceeded || code != icmpReasmTimeout || src != ipR0 || !bytes.Equal(m[8:8+28], f[0][14:14+28]) {
		t.Errorf("ICMP %d/%d from %v", typ, code, src)
	}
	if d := g.drops(0)["reassembly_timeout"]; d != 2 {
		t.Errorf("drops %v", g.drops(0))
	}
	if n, _ := g.w.ra.held(); n != 0 {
		t.Errorf("%d datagrams still held", n)
	}
}

func TestReassemblyMemoryBound(t *testing.T) {
	g := newRig(t, nil)
	slots := len(g.w.ra.slots)
	if slots*reasmBufSize > reasmMemory {
		t.Fatalf("%d slots of %d bytes exceed %d", slots, reasmBufSize, reasmMemory)
	}
	var frames [][]byte
	for i := 0; i < slots+10; i++ {
		s := bigEcho(3000)
		s.id = uint16(i)
		frames = append(frames, fragments(s.frame(), 1480)[0])
	}
	for i := 0; i < len(frames); i += 32 {
		g.run(0, frames[i:min(i+32, len(frames))]...)
	}
	if n, _ := g.w.ra.held(); n != slots {
		t.Errorf("%d held, want all %d slots", n, slots)
	}
	if d := g.drops(0)["reassembly_no_memory"]; d != 10 {
		t.Errorf("drops %v", g.drops(0))
	}
	// Forwarding is not disturbed.
	g.run(0, aToB(64, udpPayload(20)).frame())
	if len(g.sent(1)) != 1 {
		t.Error("forwarding stopped while reassembly is full")
	}
}

func TestForwardedFragmentsUntouched(t *testing.T) {
	g := newRig(t, nil)
	f := fragments(aToB(64, udpPayload(1000)).frame(), 512)
	g.run(0, f...)
	out := g.sent(1)
	if len(out) != 2 {
		t.Fatalf("forwarded %d fragments, want 2", len(out))
	}
	for i := range out {
		ip := checkIPv4(t, out[i])
		if !bytes.Equal(ip[20:], f[i][34:]) || ip[6] != f[i][20] || ip[7] != f[i][21] {
			t.Errorf("fragment %d changed", i)
		}
	}
}

func TestZeroAllocsWithOptionsAndReassembly(t *testing.T) {
	g := newRig(t, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	g.links[0].queues[0].keep = true
	for i := 0; i < 16; i++ {
		s := aToB(64, udpPayload(18))
		s.options = []byte{0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1}
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	for _, f := range fragments(bigEcho(3000).frame(), 1480) {
		q.in = append(q.in, append(make([]byte, 10), f...))
	}
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch, want 0", allocs)
	}
	if g.r.Interfaces()[0].TxPackets == 0 {
		t.Fatal("no echo reply")
	}
}

// FuzzReassembly feeds the reassembler arbitrary fragments of a few
// datagrams (offsets, lengths, flags and ids from the input): no panic,
// the held runs stay sorted and disjoint within the slot, nothing is held
// beyond the slots, and a completed datagram holds exactly the bytes its
// fragments carried.
func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 0, 185, 1, 0, 185, 185, 0, 0, 185})
	f.Add([]byte{0, 10, 1, 1, 0, 0, 1, 1, 0, 0, 2, 0})
	f.Add([]byte{1, 0, 3, 1, 1, 0, 0, 1, 2, 0, 1, 0})
	f.Fuzz(func(t *testing.T, plan []byte) {
		var ra reassembler
		ra.slots = make([]reasmSlot, 3)
		for i := range ra.slots {
			ra.slots[i].data = make([]byte, reasmBufSize)
		}
		now := time.Unix(0, 0)
		buf := make([]byte, 20+2048)
		out := make([]byte, 65536)
		// plan: 4 bytes a fragment: id (2 values), offset/8, length/8, MF.
		for i := 0; i+3 < len(plan) && i < 4*64; i += 4 {
			off, n := int(plan[i+1])*8, int(plan[i+2])*8
			h := header.IPv4(buf[:20+n])
			h[0] = 0x45
			h.SetTotalLength(uint16(20 + n))
			h.SetID(uint16(plan[i] & 1))
			var flags uint8
			if plan[i+3]&1 != 0 {
				flags = header.IPv4FlagMoreFragments
			}
			h.SetFlagsFragmentOffset(flags, uint16(off))
			h[9] = protoUDP
			for k := range n {
				h[20+k] = byte((off + k) * 7) // the byte at each offset is known
			}
			res, s := ra.add(h, 0, now)
			used := 0
			for j := range ra.slots {
				sl := &ra.slots[j]
				if !sl.used {
					continue
				}
				used++
				for r := 0; r < sl.nruns; r++ {
					if sl.runs[r].from >= sl.runs[r].to || (r > 0 && sl.runs[r-1].to >= sl.runs[r].from) ||
						sl.runs[r].to > reasmMaxData || (sl.total >= 0 && sl.runs[r].to > sl.total) {
						t.Fatalf("runs %v (total %d)", sl.runs[:sl.nruns], sl.total)
					}
				}
			}
			if used != ra.used {
				t.Fatalf("used %d, counted %d", ra.used, used)
			}
			if res == reasmComplete {
				m := ra.build(s, out)
				for k := 20; k < m; k++ {
					if out[k] != byte((k-20)*7) {
						t.Fatalf("byte %d of the datagram is wrong", k-20)
					}
				}
				if header.IPv4(out).TotalLength() != uint16(m) || header.IPv4(out).Flags() != 0 {
					t.Fatal("header of the datagram")
				}
			}
		}
	})
}

// RFC 791: the first fragment keeps every option, later ones only those
// with the copy flag (Router Alert here, not Record Route).
func TestFragmentsCopyOnlyCopiedOptions(t *testing.T) {
	g := newRig(t, nil)
	s := aToB(64, udpPayload(3000))
	s.options = []byte{0x07, 7, 4, 0, 0, 0, 0, 1, 0x94, 4, 0, 0}
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) < 3 {
		t.Fatalf("%d fragments; drops %v", len(out), g.drops(0))
	}
	first := checkIPv4(t, out[0])
	if first[0]&0xf != 8 || first[20] != 0x07 || addr(first[23:]) != ipR1 || first[28] != 0x94 {
		t.Errorf("first fragment options: % x", first[20:32])
	}
	for i, f := range out[1:] {
		ip := checkIPv4(t, f)
		if ip[0]&0xf != 6 || !bytes.Equal(ip[20:24], []byte{0x94, 4, 0, 0}) {
			t.Errorf("fragment %d options: % x", i+1, ip[20:int(ip[0]&0xf)*4])
		}
	}
}
