package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

const masqRules = `table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 198.51.100.1 tcp dport 8080 dnat to 192.0.2.2:80
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "r1" masquerade
	}
}`

// checkL4 verifies the IPv4 header and TCP/UDP/ICMP checksums of a frame.
func checkL4(t *testing.T, f []byte) header.IPv4 {
	t.Helper()
	ip := header.IPv4(checkIPv4(t, f))
	l4 := ip.Payload()
	switch ip.Protocol() {
	case protoICMP:
		if checksum.Checksum(l4, 0) != 0xffff {
			t.Errorf("bad ICMP checksum")
		}
	case protoUDP, protoTCP:
		sum := header.PseudoHeaderChecksum(ip.TransportProtocol(), ip.SourceAddress(), ip.DestinationAddress(), uint16(len(l4)))
		if checksum.Checksum(l4, sum) != 0xffff {
			t.Errorf("bad L4 checksum (proto %d)", ip.Protocol())
		}
	}
	return ip
}

// udpChecksummed is udpPorts with a valid checksum for src -> dst.
func udpChecksummed(src, dst netip.Addr, sport, dport uint16, n int) []byte {
	u := udpPorts(sport, dport, n)
	s, d := src.As4(), dst.As4()
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, tcpip.AddrFrom4(s), tcpip.AddrFrom4(d), uint16(len(u)))
	header.UDP(u).SetChecksum(^checksum.Checksum(u, sum))
	return u
}

func TestMasqueradeBothWays(t *testing.T) {
	g := newFilterRig(t, masqRules)
	out := aToB(64, udpChecksummed(ipA, ipB, 40000, 53, 10))
	g.run(0, out.frame())
	sent := g.sent(1)
	if len(sent) != 1 {
		t.Fatalf("%d forwarded", len(sent))
	}
	ip := checkL4(t, sent[0])
	u := header.UDP(ip.Payload())
	if addr(ip.SourceAddressSlice()) != ipR1 || u.SourcePort() != 40000 {
		t.Fatalf("masqueraded to %v:%d, want %v:40000 (port kept)", addr(ip.SourceAddressSlice()), u.SourcePort(), ipR1)
	}
	// The answer comes to ferry's address and goes on to A.
	back := pktSpec{srcMAC: macB, dstMAC: macR1, src: ipB, dst: ipR1, proto: protoUDP, ttl: 64, id: 3,
		payload: udpChecksummed(ipB, ipR1, 53, 40000, 20)}
	g.run(1, back.frame())
	sent = g.sent(0)
	if len(sent) != 1 {
		t.Fatalf("reply: %d forwarded to A; drops %v", len(sent), g.drops(1))
	}
	ip = checkL4(t, sent[0])
	if addr(ip.DestinationAddressSlice()) != ipA || header.UDP(ip.Payload()).DestinationPort() != 40000 {
		t.Errorf("reply to %v:%d", addr(ip.DestinationAddressSlice()), header.UDP(ip.Payload()).DestinationPort())
	}
	// An ICMP error from B about A's translated datagram comes back to A.
	q := ipR1.As4()
	quote := aToB(64, udpChecksummed(ipA, ipB, 40000, 53, 10)).frame()[14:]
	copy(quote[12:16], q[:]) // as B saw it: from ferry's address
	binary.BigEndian.PutUint16(quote[10:], 0)
	binary.BigEndian.PutUint16(quote[10:], ^checksum.Checksum(quote[:20], 0))
	m := make([]byte, 8+len(quote))
	m[0], m[1] = icmpDestUnreachable, icmpPortUnreachable
	copy(m[8:], quote)
	binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))
	e := pktSpec{srcMAC: macB, dstMAC: macR1, src: ipB, dst: ipR1, proto: protoICMP, ttl: 64, payload: m}
	g.run(1, e.frame())
	sent = g.sent(0)
	if len(sent) != 1 {
		t.Fatalf("ICMP error: %d forwarded to A; drops %v", len(sent), g.drops(1))
	}
	ip = checkL4(t, sent[0])
	inner := header.IPv4(header.ICMPv4(ip.Payload()).Payload())
	if addr(ip.DestinationAddressSlice()) != ipA || addr(inner.SourceAddressSlice()) != ipA || !inner.IsChecksumValid() {
		t.Errorf("error to %v quoting a packet from %v", addr(ip.DestinationAddressSlice()), addr(inner.SourceAddressSlice()))
	}
}

func TestPortForwardAndHairpin(t *testing.T) {
	g := newFilterRig(t, masqRules)
	in := tcpTo(pktSpec{srcMAC: macB, dstMAC: macR1, src: ipB, dst: ipR1, ttl: 64}, 33000, 8080, 7, 0, header.TCPFlagSyn)
	g.run(1, in.frame())
	sent := g.sent(0)
	if len(sent) != 1 {
		t.Fatalf("forward: %d to A; drops %v", len(sent), g.drops(1))
	}
	ip := checkL4(t, sent[0])
	if addr(ip.DestinationAddressSlice()) != ipA || header.TCP(ip.Payload()).DestinationPort() != 80 || addr(ip.SourceAddressSlice()) != ipB {
		t.Fatalf("forwarded to %v:%d from %v", addr(ip.DestinationAddressSlice()), header.TCP(ip.Payload()).DestinationPort(), addr(ip.SourceAddressSlice()))
	}
	synack := tcpTo(pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipB, ttl: 64}, 80, 33000, 100, 8, header.TCPFlagSyn|header.TCPFlagAck)
	g.run(0, synack.frame())
	sent = g.sent(1)
	if len(sent) != 1 {
		t.Fatalf("answer: %d to B", len(sent))
	}
	ip = checkL4(t, sent[0])
	if addr(ip.SourceAddressSlice()) != ipR1 || header.TCP(ip.Payload()).SourcePort() != 8080 {
		t.Errorf("answer from %v:%d, want %v:8080", addr(ip.SourceAddressSlice()), header.TCP(ip.Payload()).SourcePort(), ipR1)
	}
	// Hairpin: A to its own forward through the public address.
	hp := tcpTo(pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR1, ttl: 64}, 34000, 8080, 9, 0, header.TCPFlagSyn)
	g.run(0, hp.frame())
	sent = g.sent(0)
	if len(sent) != 1 {
		t.Fatalf("hairpin: %d back to A; drops %v", len(sent), g.drops(0))
	}
	ip = checkL4(t, sent[0])
	if addr(ip.DestinationAddressSlice()) != ipA || addr(ip.SourceAddressSlice()) != ipR0 || header.TCP(ip.Payload()).DestinationPort() != 80 {
		t.Errorf("hairpin: %v -> %v:%d, want from %v", addr(ip.SourceAddressSlice()), addr(ip.DestinationAddressSlice()), header.TCP(ip.Payload()).DestinationPort(), ipR0)
	}
}

func TestZeroAllocsPerPacketNAT(t *testing.T) {
	g := newFilterRig(t, masqRules)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		s := aToB(64, udpChecksummed(ipA, ipB, uint16(20000+i), 9, 18))
		s.id = uint16(i)
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	g.w.read()
	g.w.process()
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 64 masqueraded packets, want 0", allocs)
	}
	if g.r.nat.Stats().Mappings != 64 {
		t.Errorf("%d mappings, want 64", g.r.nat.Stats().Mappings)
	}
}

// BenchmarkPipelineForwardNAT is the forward row with a NAT hit: 64
// masqueraded flows, established.
func BenchmarkPipelineForwardNAT(b *testing.B) {
	g := newFilterRig(b, masqRules)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB(64, udpChecksummed(ipA, ipB, uint16(20000+i), 9, 18)).frame()...))
	}
	g.w.read()
	g.w.process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}
