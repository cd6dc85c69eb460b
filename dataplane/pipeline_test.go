package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/config"
)

func checkIPv4(t *testing.T, f []byte) []byte {
	t.Helper()
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != etherTypeIPv4 {
		t.Fatalf("not an IPv4 frame: % x", f)
	}
	ip := f[14:]
	ihl := int(ip[0]&0xf) * 4
	if checksum.Checksum(ip[:ihl], 0) != 0xffff {
		t.Fatalf("bad IPv4 header checksum: % x", ip[:ihl])
	}
	if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) {
		t.Fatalf("total length %d, frame carries %d", binary.BigEndian.Uint16(ip[2:]), len(ip))
	}
	return ip
}

func addr(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

func TestForwardRewritesMACsAndTTL(t *testing.T) {
	g := newRig(t, nil)
	in := aToB(64, udpPayload(32)).frame()
	g.run(0, in)
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("sent %d frames on r1, want 1; drops %v", len(out), g.drops(0))
	}
	f := out[0]
	if !bytes.Equal(f[0:6], macB[:]) || !bytes.Equal(f[6:12], macR1[:]) {
		t.Errorf("MACs dst %x src %x, want %x %x", f[0:6], f[6:12], macB, macR1)
	}
	ip := checkIPv4(t, f)
	if ip[8] != 63 {
		t.Errorf("TTL %d, want 63", ip[8])
	}
	if !bytes.Equal(ip[20:], in[34:]) {
		t.Errorf("payload changed")
	}
	st := g.r.Interfaces()
	if st[0].RxPackets != 1 || st[1].TxPackets != 1 {
		t.Errorf("counters rx %d tx %d", st[0].RxPackets, st[1].TxPackets)
	}
}

func TestEchoReply(t *testing.T) {
	g := newRig(t, nil)
	s := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoICMP, ttl: 64, payload: echoRequest(56)}
	g.run(0, s.frame())
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("sent %d, want 1 echo reply; drops %v", len(out), g.drops(0))
	}
	ip := checkIPv4(t, out[0])
	if addr(ip[12:]) != ipR0 || addr(ip[16:]) != ipA {
		t.Errorf("reply %v -> %v", addr(ip[12:]), addr(ip[16:]))
	}
	icmp := ip[20:]
	if icmp[0] != icmpEchoReply || checksum.Checksum(icmp, 0) != 0xffff {
		t.Errorf("type %d, checksum ok=%v", icmp[0], checksum.Checksum(icmp, 0) == 0xffff)
	}
	if !bytes.Equal(out[0][0:6], macA[:]) {
		t.Errorf("reply to MAC %x", out[0][0:6])
	}
}

// icmpErrorFrom checks an ICMP error frame and returns its type, code,
// source and the quoted bytes.
func icmpErrorFrom(t *testing.T, f []byte) (typ, code byte, src netip.Addr, m []byte) {
	t.Helper()
	ip := checkIPv4(t, f)
	if ip[9] != protoICMP {
		t.Fatalf("protocol %d, want ICMP", ip[9])
	}
	m = ip[20:]
	if checksum.Checksum(m, 0) != 0xffff {
		t.Fatalf("bad ICMP checksum")
	}
	return m[0], m[1], addr(ip[12:]), m
}

func TestICMPErrors(t *testing.T) {
	tests := []struct {
		name     string
		spec     pktSpec
		typ      byte
		code     byte
		mtu      uint16
		reason   string
		fromPort int
	}{
		{"ttl expired", aToB(1, udpPayload(20)), icmpTimeExceeded, icmpTTLExceeded, 0, "ttl_exceeded", 0},
		{"no route", pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: netip.MustParseAddr("203.0.113.77"), proto: protoUDP, ttl: 64, payload: udpPayload(20)},
			icmpDestUnreachable, icmpNetUnreachable, 0, "no_route", 0},
		{"frag needed", func() pktSpec { s := aToB(64, udpPayload(1400)); s.df = true; return s }(),
			icmpDestUnreachable, icmpFragNeeded, 1300, "frag_needed", 0},
		{"udp to ferry", pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR1, proto: protoUDP, ttl: 64, payload: udpPayload(20)},
			icmpDestUnreachable, icmpPortUnreachable, 0, "local_port_unreachable", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, nil)
			in := tc.spec.frame()
			g.run(0, in)
			out := g.sent(0)
			if len(out) != 1 {
				t.Fatalf("sent %d frames back, want 1 ICMP error; drops %v", len(out), g.drops(0))
			}
			typ, code, src, m := icmpErrorFrom(t, out[0])
			if typ != tc.typ || code != tc.code {
				t.Errorf("ICMP %d/%d, want %d/%d", typ, code, tc.typ, tc.code)
			}
			// An error about a packet to ferry comes from the address it
			// was sent to (RFC 1812 4.3.2.4); others from the ingress port's.
			want := ipR0
			if tc.spec.dst == ipR1 {
				want = ipR1
			}
			if src != want {
				t.Errorf("error sourced from %v, want %v", src, want)
			}
			if got := binary.BigEndian.Uint16(m[6:]); got != tc.mtu {
				t.Errorf("next-hop MTU %d, want %d", got, tc.mtu)
			}
			// The quote is the original IP header as received plus at least 8 bytes.
			if len(m)-8 < 28 || !bytes.Equal(m[8:8+28], in[14:14+28]) {
				t.Errorf("quote does not match the original header and 8 bytes")
			}
			if len(out[0]) > 14+576 {
				t.Errorf("error is %d bytes, RFC 1812 limits it to 576", len(out[0])-14)
			}
			if g.drops(0)[tc.reason] != 1 {
				t.Errorf("drops %v, want %s=1", g.drops(0), tc.reason)
			}
		})
	}
}

func TestNoErrorAboutErrorsOrFragments(t *testing.T) {
	g := newRig(t, nil)
	// An ICMP time exceeded with TTL 1: no error about an error.
	errPayload := make([]byte, 36)
	errPayload[0] = icmpTimeExceeded
	binary.BigEndian.PutUint16(errPayload[2:], ^checksum.Checksum(errPayload, 0))
	s := aToB(1, errPayload)
	s.proto = protoICMP
	// A non-first fragment with TTL 1.
	frag := aToB(1, udpPayload(20))
	fb := frag.frame()
	binary.BigEndian.PutUint16(fb[14+6:], 100) // offset 800
	fb[14+10], fb[14+11] = 0, 0
	binary.BigEndian.PutUint16(fb[14+10:], ^checksum.Checksum(fb[14:34], 0))
	g.run(0, s.frame(), fb)
	if out := g.sent(0); len(out) != 0 {
		t.Fatalf("sent %d ICMP errors, want none", len(out))
	}
	d := g.drops(0)
	if d["ttl_exceeded"] != 2 || d["icmp_error_suppressed"] != 2 {
		t.Errorf("drops %v", d)
	}
}

func TestICMPErrorRateLimit(t *testing.T) {
	g := newRig(t, nil)
	var frames [][]byte
	for i := 0; i < 20; i++ {
		frames = append(frames, aToB(1, udpPayload(20)).frame())
	}
	g.run(0, frames...)
	if n := len(g.sent(0)); n != 6 {
		t.Errorf("sent %d errors to one source in a burst, want 6 (Linux icmp_ratelimit burst)", n)
	}
	if d := g.drops(0)["icmp_error_ratelimited"]; d != 14 {
		t.Errorf("rate-limited %d, want 14", d)
	}
}

func TestFragmentation(t *testing.T) {
	g := newRig(t, nil)
	payload := udpPayload(3000)
	in := aToB(64, payload).frame()
	g.run(0, in)
	out := g.sent(1)
	if len(out) != 3 {
		t.Fatalf("%d fragments, want 3 for 3028 bytes over MTU 1300; drops %v", len(out), g.drops(0))
	}
	got := make([]byte, len(payload))
	seen := 0
	for i, f := range out {
		ip := checkIPv4(t, f)
		if len(ip) > 1300 {
			t.Errorf("fragment %d is %d bytes, MTU 1300", i, len(ip))
		}
		if ip[8] != 63 || binary.BigEndian.Uint16(ip[4:]) != 7 {
			t.Errorf("fragment %d TTL %d id %d", i, ip[8], binary.BigEndian.Uint16(ip[4:]))
		}
		fo := binary.BigEndian.Uint16(ip[6:])
		off := int(fo&0x1fff) * 8
		more := fo&0x2000 != 0
		if more != (i < len(out)-1) {
			t.Errorf("fragment %d MF=%v", i, more)
		}
		seen += copy(got[off:], ip[20:])
	}
	if seen != len(payload) || !bytes.Equal(got, payload) {
		t.Errorf("reassembled payload differs (%d of %d bytes)", seen, len(payload))
	}
}

func TestBadInputIsCounted(t *testing.T) {
	good := aToB(64, udpPayload(20)).frame()
	mut := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	tests := []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"runt", good[:10], "frame_truncated"},
		{"truncated ip", good[:14+12], "ip_truncated"},
		{"bad version", mut(func(b []byte) { b[14] = 0x65 }), "ip_bad_version"},
		{"bad ihl", mut(func(b []byte) { b[14] = 0x43 }), "ip_bad_ihl"},
		{"total beyond frame", mut(func(b []byte) { binary.BigEndian.PutUint16(b[16:], 1000) }), "ip_truncated"},
		{"total below header", mut(func(b []byte) { binary.BigEndian.PutUint16(b[16:], 10) }), "ip_bad_total_length"},
		{"bad checksum", mut(func(b []byte) { b[24] ^= 0xff }), "ip_bad_checksum"},
		{"unknown ethertype", mut(func(b []byte) { b[12], b[13] = 0x88, 0xb5 }), "unknown_ethertype"},
		{"other host", mut(func(b []byte) { b[5] = 0x77 }), "not_for_us"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, nil)
			g.run(0, tc.frame)
			if n := len(g.sent(1)) + len(g.sent(0)); n != 0 {
				t.Errorf("sent %d frames", n)
			}
			if d := g.drops(0); d[tc.reason] != 1 || len(d) != 1 {
				t.Errorf("drops %v, want only %s=1", d, tc.reason)
			}
			// and the port still forwards
			g.run(0, good)
			if n := len(g.sent(1)); n != 1 {
				t.Errorf("good frame after bad: sent %d", n)
			}
		})
	}
}

func TestTTLZeroAndOptionsForwarded(t *testing.T) {
	g := newRig(t, nil)
	s := aToB(64, udpPayload(20))
	s.options = []byte{0x94, 4, 0, 0} // router alert
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("packet with options: sent %d, drops %v", len(out), g.drops(0))
	}
	if ip := checkIPv4(t, out[0]); !bytes.Equal(ip[20:24], s.options) {
		t.Errorf("options changed: % x", ip[20:24])
	}
	g.run(0, aToB(0, udpPayload(20)).frame())
	if g.drops(0)["ttl_exceeded"] != 1 {
		t.Errorf("TTL 0: drops %v", g.drops(0))
	}
}

func arpFrame(oper uint16, ethDst, sha [6]byte, spa netip.Addr, tha [6]byte, tpa netip.Addr) []byte {
	b := make([]byte, arpMinFrame)
	buildARP(b, oper, ethDst, sha, ip4(spa), tha, ip4(tpa))
	return b
}

func TestARPRequestAnswered(t *testing.T) {
	g := newRig(t, nil)
	other := netip.MustParseAddr("192.0.2.99")
	g.run(0,
		arpFrame(arpRequest, broadcastMAC, macA, ipA, [6]byte{}, ipR0),
		arpFrame(arpRequest, broadcastMAC, macA, ipA, [6]byte{}, other))
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("sent %d ARP frames, want 1 reply", len(out))
	}
	f := out[0]
	a := f[14:]
	if binary.BigEndian.Uint16(a[offARPOper:]) != arpReply || !bytes.Equal(a[offARPSHA:offARPSHA+6], macR0[:]) ||
		addr(a[offARPSPA:]) != ipR0 || addr(a[offARPTPA:]) != ipA || !bytes.Equal(f[0:6], macA[:]) {
		t.Errorf("bad reply % x", f)
	}
	if g.drops(0)["arp_not_for_us"] != 1 {
		t.Errorf("drops %v", g.drops(0))
	}
}

func TestUnresolvedNeighbourQueuesThenSends(t *testing.T) {
	g := newRig(t, func(c *config.Config) { c.Neighbors = c.Neighbors[:1] }) // B unknown
	g.run(0, aToB(64, udpPayload(20)).frame(), aToB(64, udpPayload(21)).frame())
	out := g.sent(1)
	if len(out) != 1 || binary.BigEndian.Uint16(out[0][12:]) != etherTypeARP {
		t.Fatalf("want one ARP request on r1, got %d frames", len(out))
	}
	a := out[0][14:]
	if addr(a[offARPTPA:]) != ipB || addr(a[offARPSPA:]) != ipR1 || !bytes.Equal(out[0][0:6], broadcastMAC[:]) {
		t.Errorf("bad request % x", out[0])
	}
	g.run(1, arpFrame(arpReply, macR1, macB, ipB, macR1, ipR1))
	out = g.sent(1)
	if len(out) != 2 {
		t.Fatalf("after the reply, sent %d queued frames, want 2", len(out))
	}
	for _, f := range out {
		if !bytes.Equal(f[0:6], macB[:]) || checkIPv4(t, f)[8] != 63 {
			t.Errorf("released frame: dst %x ttl %d", f[0:6], f[22])
		}
	}
}

// TestZeroAllocsPerPacket is the brief's rule: steady-state forwarding
// allocates nothing.
func TestZeroAllocsPerPacket(t *testing.T) {
	g := newRig(t, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		s := aToB(64, udpPayload(18))
		s.id = uint16(i)
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 64 packets, want 0", allocs)
	}
	if g.r.Interfaces()[1].TxPackets == 0 {
		t.Fatal("nothing forwarded")
	}
}

func BenchmarkPipelineForward(b *testing.B) {
	g := newRig(b, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB(64, udpPayload(18)).frame()...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}

// A veth is often not RUNNING yet when ferryd starts; the cached state must
// not stop transmission (the kernel itself refuses a down link).
func TestForwardsWhileCachedLinkStateLags(t *testing.T) {
	g := newRig(t, nil)
	g.r.ports[1].up.Store(false)
	g.run(0, aToB(64, udpPayload(20)).frame())
	if n := len(g.sent(1)); n != 1 {
		t.Fatalf("sent %d, want 1; drops %v", n, g.drops(0))
	}
}

// When ARP gets no answer, the table retries, gives up, and the control
// goroutine answers each waiting packet with ICMP host unreachable.
func TestNeighbourFailureSendsHostUnreachable(t *testing.T) {
	g := newRig(t, func(c *config.Config) { c.Neighbors = c.Neighbors[:1] }) // B unknown
	in := aToB(64, udpPayload(20)).frame()
	g.run(0, in)
	if out := g.sent(1); len(out) != 1 {
		t.Fatalf("first ARP request: sent %d", len(out))
	}
	start := g.w.now
	for s := 1; s <= 3; s++ {
		g.r.neighbourTimers(start.Add(time.Duration(s)*time.Second + time.Millisecond))
	}
	var arps, errs [][]byte
	for _, f := range g.links[1].control {
		if binary.BigEndian.Uint16(f[12:]) == etherTypeARP {
			arps = append(arps, f)
		}
	}
	errs = g.links[0].control
	if len(arps) != 2 {
		t.Errorf("%d retransmitted requests, want 2 (3 in all with the first)", len(arps))
	}
	if len(errs) != 1 {
		t.Fatalf("%d frames back to A, want 1 host unreachable", len(errs))
	}
	typ, code, src, _ := icmpErrorFrom(t, errs[0])
	if typ != icmpDestUnreachable || code != icmpHostUnreachable || src != ipR0 {
		t.Errorf("got ICMP %d/%d from %v", typ, code, src)
	}
	if g.drops(0)["neighbor_failed"] != 1 {
		t.Errorf("drops %v", g.drops(0))
	}
}
