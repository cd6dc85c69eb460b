package nat

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// packet builds an IPv4 packet around l4 (whose checksum it fills in,
// unless keepL4Sum) with a correct header checksum.
func packet(proto uint8, src, dst Endpoint, l4 []byte, fragOff uint16, keepL4Sum bool) header.IPv4 {
	ip := header.IPv4(make([]byte, header.IPv4MinimumSize+len(l4)))
	ip.Encode(&header.IPv4Fields{
		TotalLength:    uint16(len(ip)),
		TTL:            64,
		Protocol:       proto,
		SrcAddr:        tcpip.AddrFrom4(src.Addr),
		DstAddr:        tcpip.AddrFrom4(dst.Addr),
		FragmentOffset: fragOff,
		ID:             0x1234,
	})
	copy(ip.Payload(), l4)
	if !keepL4Sum && fragOff == 0 {
		fixL4(ip)
	}
	ip.SetChecksum(^ip.CalculateChecksum())
	return ip
}

func tcpSeg(src, dst uint16, payload string) []byte {
	b := make([]byte, header.TCPMinimumSize+len(payload))
	header.TCP(b).Encode(&header.TCPFields{SrcPort: src, DstPort: dst, SeqNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 100})
	copy(b[header.TCPMinimumSize:], payload)
	return b
}

func udpDgram(src, dst uint16, payload string) []byte {
	b := make([]byte, header.UDPMinimumSize+len(payload))
	header.UDP(b).Encode(&header.UDPFields{SrcPort: src, DstPort: dst, Length: uint16(len(b))})
	copy(b[header.UDPMinimumSize:], payload)
	return b
}

func icmpMsg(typ header.ICMPv4Type, ident uint16, payload []byte) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+len(payload))
	ic := header.ICMPv4(b)
	ic.SetType(typ)
	ic.SetIdent(ident)
	ic.SetSequence(7)
	copy(ic.Payload(), payload)
	return b
}

func pseudo(ip header.IPv4, l4len int) uint16 {
	return header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(ip.Protocol()), ip.SourceAddress(), ip.DestinationAddress(), uint16(l4len))
}

// fixL4 fills in the L4 checksum of an unfragmented packet.
func fixL4(ip header.IPv4) {
	l4 := ip.Payload()
	switch ip.Protocol() {
	case ProtoTCP:
		header.TCP(l4).SetChecksum(0)
		header.TCP(l4).SetChecksum(^checksum.Checksum(l4, pseudo(ip, len(l4))))
	case ProtoUDP:
		header.UDP(l4).SetChecksum(0)
		c := ^checksum.Checksum(l4, pseudo(ip, len(l4)))
		if c == 0 {
			c = 0xffff
		}
		header.UDP(l4).SetChecksum(c)
	case ProtoICMP:
		header.ICMPv4(l4).SetChecksum(0)
		header.ICMPv4(l4).SetChecksum(^checksum.Checksum(l4, 0))
	}
}

func ipSumOK(ip header.IPv4) bool {
	return checksum.Checksum(ip[:ip.HeaderLength()], 0) == 0xffff
}

// l4SumOK recomputes the L4 checksum of an unfragmented, complete packet.
func l4SumOK(ip header.IPv4) bool {
	l4 := ip.Payload()
	switch ip.Protocol() {
	case ProtoTCP:
		return checksum.Checksum(l4, pseudo(ip, len(l4))) == 0xffff
	case ProtoUDP:
		return header.UDP(l4).Checksum() == 0 || checksum.Checksum(l4, pseudo(ip, len(l4))) == 0xffff
	case ProtoICMP:
		return checksum.Checksum(l4, 0) == 0xffff
	}
	return true
}

var (
	inside = ep(10, 0, 0, 2, 5000)
	extEP  = ep(198, 51, 100, 1, 6001)
	remote = ep(203, 0, 113, 7, 443)
)

func TestSetSourceDest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto uint8
		l4    []byte
	}{
		{"tcp", ProtoTCP, tcpSeg(inside.Port, remote.Port, "hello, world")},
		{"tcp-odd", ProtoTCP, tcpSeg(inside.Port, remote.Port, "odd")},
		{"udp", ProtoUDP, udpDgram(inside.Port, remote.Port, "a datagram")},
		{"icmp-echo", ProtoICMP, icmpMsg(header.ICMPv4Echo, inside.Port, []byte("ping"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := packet(tc.proto, inside, remote, tc.l4, 0, false)
			orig := bytes.Clone(ip)
			SetSource(ip, ip.Payload(), extEP, false)
			if !ipSumOK(ip) || !l4SumOK(ip) {
				t.Fatalf("after SetSource: ip ok %v, l4 ok %v", ipSumOK(ip), l4SumOK(ip))
			}
			if got := ip.SourceAddress(); got != tcpip.AddrFrom4(extEP.Addr) {
				t.Errorf("source %v", got)
			}
			if got := srcPort(ip); got != extEP.Port {
				t.Errorf("source port/ident %d", got)
			}
			// And back, as the reply's destination would be.
			SetSource(ip, ip.Payload(), inside, false)
			if !bytes.Equal(ip, orig) {
				t.Errorf("SetSource there and back changed the packet:\n%x\n%x", orig, ip)
			}
			// The reply: destination rewritten.
			var rl4 []byte
			switch tc.proto {
			case ProtoTCP:
				rl4 = tcpSeg(remote.Port, extEP.Port, "reply")
			case ProtoUDP:
				rl4 = udpDgram(remote.Port, extEP.Port, "reply")
			default:
				rl4 = icmpMsg(header.ICMPv4EchoReply, extEP.Port, []byte("ping"))
			}
			r := packet(tc.proto, remote, extEP, rl4, 0, false)
			SetDest(r, r.Payload(), inside, false)
			if !ipSumOK(r) || !l4SumOK(r) {
				t.Fatalf("after SetDest: ip ok %v, l4 ok %v", ipSumOK(r), l4SumOK(r))
			}
			if r.DestinationAddress() != tcpip.AddrFrom4(inside.Addr) || dstPort(r) != inside.Port {
				t.Errorf("dest %v:%d", r.DestinationAddress(), dstPort(r))
			}
		})
	}
}

func srcPort(ip header.IPv4) uint16 {
	switch ip.Protocol() {
	case ProtoTCP:
		return header.TCP(ip.Payload()).SourcePort()
	case ProtoUDP:
		return header.UDP(ip.Payload()).SourcePort()
	}
	return header.ICMPv4(ip.Payload()).Ident()
}

func dstPort(ip header.IPv4) uint16 {
	switch ip.Protocol() {
	case ProtoTCP:
		return header.TCP(ip.Payload()).DestinationPort()
	case ProtoUDP:
		return header.UDP(ip.Payload()).DestinationPort()
	}
	return header.ICMPv4(ip.Payload()).Ident()
}

func TestUDPZeroChecksum(t *testing.T) {
	ip := packet(ProtoUDP, inside, remote, udpDgram(inside.Port, remote.Port, "no checksum"), 0, true)
	SetSource(ip, ip.Payload(), extEP, false)
	if c := header.UDP(ip.Payload()).Checksum(); c != 0 || !ipSumOK(ip) {
		t.Errorf("UDP checksum %#x, ip ok %v; want 0 kept", c, ipSumOK(ip))
	}
	if header.UDP(ip.Payload()).SourcePort() != extEP.Port {
		t.Error("port not rewritten")
	}
}

func TestNonFirstFragment(t *testing.T) {
	payload := []byte("the middle of a datagram, no L4 header here")
	ip := packet(ProtoUDP, inside, remote, payload, 1480, true)
	SetSource(ip, nil, extEP, false)
	if !ipSumOK(ip) || ip.SourceAddress() != tcpip.AddrFrom4(extEP.Addr) || !bytes.Equal(ip.Payload(), payload) {
		t.Errorf("nil l4: ip ok %v, payload changed %v", ipSumOK(ip), !bytes.Equal(ip.Payload(), payload))
	}
	// Passing the payload anyway must not touch it either.
	SetDest(ip, ip.Payload(), inside, false)
	if !ipSumOK(ip) || !bytes.Equal(ip.Payload(), payload) {
		t.Error("non-first fragment's payload rewritten")
	}
}

func TestPartialChecksum(t *testing.T) {
	for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
		l4 := tcpSeg(inside.Port, remote.Port, "gso super-frame payload")
		if proto == ProtoUDP {
			l4 = udpDgram(inside.Port, remote.Port, "gso super-frame payload")
		}
		ip := packet(proto, inside, remote, l4, 0, true)
		// As the guest hands it over: the field holds the pseudo-header sum.
		sum := pseudo(ip, len(l4))
		csumField(ip).set(sum)
		SetSource(ip, ip.Payload(), extEP, true)
		if got, want := csumField(ip).get(), pseudo(ip, len(l4)); got != want || !ipSumOK(ip) {
			t.Errorf("proto %d: partial field %#x, want pseudo-header sum %#x (ip ok %v)", proto, got, want, ipSumOK(ip))
		}
		if srcPort(ip) != extEP.Port {
			t.Errorf("proto %d: port not rewritten", proto)
		}
		SetDest(ip, ip.Payload(), ep(192, 0, 2, 200, 8080), true)
		if got, want := csumField(ip).get(), pseudo(ip, len(l4)); got != want {
			t.Errorf("proto %d: SetDest partial field %#x, want %#x", proto, got, want)
		}
	}
}

type field struct {
	get func() uint16
	set func(uint16)
}

func csumField(ip header.IPv4) field {
	if ip.Protocol() == ProtoTCP {
		t := header.TCP(ip.Payload())
		return field{t.Checksum, t.SetChecksum}
	}
	u := header.UDP(ip.Payload())
	return field{u.Checksum, u.SetChecksum}
}

// icmpError builds the error a router at from sends to the packet's source
// about pkt, quoting quoteLen bytes of it (0: all).
func icmpError(from [4]byte, pkt header.IPv4, quoteLen int) header.IPv4 {
	q := bytes.Clone(pkt)
	if quoteLen > 0 && quoteLen < len(q) {
		q = q[:quoteLen]
	}
	msg := icmpMsg(header.ICMPv4DstUnreachable, 0, q)
	header.ICMPv4(msg).SetCode(header.ICMPv4PortUnreachable)
	var src Endpoint
	copy(src.Addr[:], pkt.SourceAddressSlice())
	return packet(ProtoICMP, Endpoint{Addr: from}, src, msg, 0, false)
}

func quoteOf(ip header.IPv4) header.IPv4 { return header.IPv4(header.ICMPv4(ip.Payload()).Payload()) }

func TestTranslateICMPError(t *testing.T) {
	router := [4]byte{203, 0, 113, 254}
	for _, tc := range []struct {
		name     string
		proto    uint8
		l4       []byte
		quoteLen int
		l4Sum    bool // the quoted L4 checksum can be checked
	}{
		{"tcp-full", ProtoTCP, tcpSeg(inside.Port, remote.Port, "data"), 0, true},
		{"tcp-8", ProtoTCP, tcpSeg(inside.Port, remote.Port, "data"), 28, false},
		{"udp-full", ProtoUDP, udpDgram(inside.Port, remote.Port, "query"), 0, true},
		{"udp-8", ProtoUDP, udpDgram(inside.Port, remote.Port, "query"), 28, false},
		{"echo", ProtoICMP, icmpMsg(header.ICMPv4Echo, inside.Port, []byte("ping")), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := packet(tc.proto, inside, remote, tc.l4, 0, false)
			orig := bytes.Clone(out)
			SetSource(out, out.Payload(), extEP, false) // leaves through the NAT
			e := icmpError(router, out, tc.quoteLen)
			if !TranslateICMPError(e, inside.Addr, inside) {
				t.Fatal("refused")
			}
			if !ipSumOK(e) || !l4SumOK(e) {
				t.Fatalf("outer ip ok %v, icmp ok %v", ipSumOK(e), l4SumOK(e))
			}
			if e.DestinationAddress() != tcpip.AddrFrom4(inside.Addr) {
				t.Errorf("outer dst %v", e.DestinationAddress())
			}
			q := quoteOf(e)
			if !ipSumOK(q) {
				t.Error("quoted header checksum wrong")
			}
			if tc.l4Sum && !l4SumOK(q) {
				t.Error("quoted L4 checksum wrong")
			}
			// The quote is what the inside host sent.
			if !bytes.Equal(q, orig[:len(q)]) {
				t.Errorf("quote\n%x\nwant\n%x", []byte(q), []byte(orig[:len(q)]))
			}
		})
	}
	// A quote without its ports is refused and left alone.
	out := packet(ProtoUDP, extEP, remote, udpDgram(extEP.Port, remote.Port, "x"), 0, false)
	e := icmpError(router, out, header.IPv4MinimumSize+2)
	before := bytes.Clone(e)
	if TranslateICMPError(e, inside.Addr, inside) || !bytes.Equal(e, before) {
		t.Error("a quote too short for the ports was translated")
	}
	// Not an error.
	echo := packet(ProtoICMP, remote, extEP, icmpMsg(header.ICMPv4EchoReply, 1, nil), 0, false)
	if TranslateICMPError(echo, inside.Addr, inside) {
		t.Error("an echo reply was translated as an error")
	}
}

// An inside server behind a port forward answers with an ICMP error about
// a packet that came in: it leaves with the address and port the remote
// sent to.
func TestTranslateICMPErrorDest(t *testing.T) {
	in := packet(ProtoUDP, remote, extEP, udpDgram(remote.Port, extEP.Port, "to the forward"), 0, false)
	orig := bytes.Clone(in)
	SetDest(in, in.Payload(), inside, false) // the port forward
	// The inside host's error, to the remote.
	msg := icmpMsg(header.ICMPv4DstUnreachable, 0, in)
	e := packet(ProtoICMP, inside, remote, msg, 0, false)
	if !TranslateICMPErrorDest(e, extEP.Addr, extEP) {
		t.Fatal("refused")
	}
	if !ipSumOK(e) || !l4SumOK(e) || !ipSumOK(quoteOf(e)) || !l4SumOK(quoteOf(e)) {
		t.Fatal("checksums wrong")
	}
	if e.SourceAddress() != tcpip.AddrFrom4(extEP.Addr) || !bytes.Equal(quoteOf(e), orig) {
		t.Errorf("src %v, quote %x want %x", e.SourceAddress(), []byte(quoteOf(e)), []byte(orig))
	}
}

func TestZeroAllocsRewrite(t *testing.T) {
	tcp := packet(ProtoTCP, inside, remote, tcpSeg(inside.Port, remote.Port, "x"), 0, false)
	udp := packet(ProtoUDP, inside, remote, udpDgram(inside.Port, remote.Port, "x"), 0, false)
	out := packet(ProtoUDP, extEP, remote, udpDgram(extEP.Port, remote.Port, "x"), 0, false)
	e := icmpError([4]byte{203, 0, 113, 254}, out, 0)
	if n := testing.AllocsPerRun(1000, func() {
		SetSource(tcp, tcp.Payload(), extEP, false)
		SetDest(udp, udp.Payload(), inside, true)
		TranslateICMPError(e, inside.Addr, inside)
		TranslateICMPErrorDest(e, extEP.Addr, extEP)
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

// A UDP checksum that comes out as 0 must be sent as 0xffff (0 means none).
func TestUDPChecksumNeverBecomesZero(t *testing.T) {
	for w := range 1 << 17 {
		ip := packet(ProtoUDP, inside, remote, udpDgram(inside.Port, remote.Port, string([]byte{byte(w >> 8), byte(w)})), 0, false)
		SetSource(ip, ip.Payload(), extEP, false)
		if header.UDP(ip.Payload()).Checksum() == 0xffff {
			if !l4SumOK(ip) {
				t.Fatal("0xffff checksum does not verify")
			}
			return
		}
		if header.UDP(ip.Payload()).Checksum() == 0 {
			t.Fatal("checksum became 0")
		}
	}
	t.Fatal("no payload gave a zero checksum")
}
