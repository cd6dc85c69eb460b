package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestFrames(t *testing.T) {
	v4 := FrameSpec{Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("198.51.100.3"), DstPort: 9}
	v6 := FrameSpec{Src: netip.MustParseAddr("2001:db8:1::2"), Dst: netip.MustParseAddr("2001:db8:2::3"), DstPort: 9}
	for _, s := range []*FrameSpec{&v4, &v6} {
		s.SrcMAC = [6]byte{2, 0, 0, 0, 0, 0xa}
		s.DstMAC = [6]byte{2, 0, 0, 0, 0, 0xb}
	}
	cases := []struct {
		spec    FrameSpec
		size    int
		flow    int
		wantLen int // without FCS
		sport   uint16
		dport   uint16
	}{
		{v4, 64, 0, 60, 1024, 9},
		{v4, 64, 1, 60, 1025, 9},
		{v4, 1518, 65535, 1514, 1024 + 1535, 10},
		{v4, 576, 999999, 572, 1024 + 999999%64000, 9 + 15},
		// 14 + 40 + 8 bytes do not fit a 64-byte frame: the frame grows.
		{v6, 64, 0, 62, 1024, 9},
		{v6, 64, 63999, 62, 1024 + 63999, 9},
		{v6, 66, 64000, 62, 1024, 10},
		{v6, 512, 7, 508, 1031, 9},
		{v6, 1518, 999999, 1514, 1024 + 999999%64000, 9 + 15},
	}
	for _, c := range cases {
		c.spec.Size = c.size
		f := c.spec.Frame(c.flow)
		name := fmt.Sprintf("%v size %d flow %d", c.spec.Dst, c.size, c.flow)
		if len(f) != c.wantLen {
			t.Errorf("%s: %d bytes, want %d", name, len(f), c.wantLen)
			continue
		}
		if !bytes.Equal(f[0:6], c.spec.DstMAC[:]) || !bytes.Equal(f[6:12], c.spec.SrcMAC[:]) {
			t.Errorf("%s: MACs % x", name, f[:12])
		}
		var u header.UDP
		var src, dst tcpip.Address
		switch et := binary.BigEndian.Uint16(f[12:]); {
		case c.spec.Dst.Is4():
			if et != 0x0800 {
				t.Fatalf("%s: EtherType %#04x", name, et)
			}
			ip := header.IPv4(f[14:])
			if !ip.IsValid(len(ip)) || !ip.IsChecksumValid() || ip.TTL() != 64 || ip.TransportProtocol() != header.UDPProtocolNumber || int(ip.TotalLength()) != len(ip) {
				t.Errorf("%s: bad IPv4 header % x", name, f[14:34])
			}
			u, src, dst = header.UDP(ip.Payload()), ip.SourceAddress(), ip.DestinationAddress()
		default:
			if et != 0x86DD {
				t.Fatalf("%s: EtherType %#04x", name, et)
			}
			ip := header.IPv6(f[14:])
			if !ip.IsValid(len(ip)) || ip.HopLimit() != 64 || ip.TransportProtocol() != header.UDPProtocolNumber || int(ip.PayloadLength()) != len(ip)-header.IPv6MinimumSize {
				t.Errorf("%s: bad IPv6 header % x", name, f[14:54])
			}
			if tc, label := ip.TOS(); tc != 0 || label != 0 {
				t.Errorf("%s: traffic class %d, flow label %d", name, tc, label)
			}
			u, src, dst = header.UDP(ip.Payload()), ip.SourceAddress(), ip.DestinationAddress()
		}
		if src != tcpip.AddrFromSlice(c.spec.Src.AsSlice()) || dst != tcpip.AddrFromSlice(c.spec.Dst.AsSlice()) {
			t.Errorf("%s: addresses %v -> %v", name, src, dst)
		}
		if u.SourcePort() != c.sport || u.DestinationPort() != c.dport || int(u.Length()) != len(u) {
			t.Errorf("%s: ports %d -> %d, length %d of %d", name, u.SourcePort(), u.DestinationPort(), u.Length(), len(u))
		}
		if u.Checksum() == 0 || !u.IsChecksumValid(src, dst, checksum.Checksum(u.Payload(), 0)) {
			t.Errorf("%s: bad UDP checksum %#04x", name, u.Checksum())
		}
	}
}

// A frame the builder got wrong must fail the checks above: flipping one
// payload bit breaks the UDP checksum gvisor computes independently.
func TestFrameChecksumCatchesDamage(t *testing.T) {
	s := FrameSpec{Src: netip.MustParseAddr("2001:db8:1::2"), Dst: netip.MustParseAddr("2001:db8:2::3"), Size: 128, DstPort: 9}
	f := s.Frame(3)
	ip := header.IPv6(f[14:])
	u := header.UDP(ip.Payload())
	u.Payload()[5] ^= 0x10
	if u.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(u.Payload(), 0)) {
		t.Fatal("damaged frame passes the checksum check")
	}
}

func TestFlowsDiffer(t *testing.T) {
	for _, c := range []struct {
		src, dst string
		udpAt    int // offset of the UDP header
	}{
		{"192.0.2.2", "198.51.100.3", 14 + 20},
		{"2001:db8:1::2", "2001:db8:2::3", 14 + 40},
	} {
		s := FrameSpec{Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr(c.dst), Size: 64, DstPort: 9}
		seen := map[string]int{}
		for flow := 0; flow < 1000000; flow += 97 {
			ports := string(s.Frame(flow)[c.udpAt : c.udpAt+4])
			if prev, ok := seen[ports]; ok {
				t.Fatalf("%s: flows %d and %d share ports", c.dst, prev, flow)
			}
			seen[ports] = flow
		}
	}
}

func TestParseSNMP6(t *testing.T) {
	a := ParseSNMP6("Ip6InReceives                   \t12\nIp6InHdrErrors                  \t1\nIp6InAddrErrors                 \t10\nIp6InTruncatedPkts              \t0\nIcmp6InMsgs 2\n")
	b := ParseSNMP6("Ip6InReceives 1012\nIp6InHdrErrors 1\nIp6InAddrErrors 1005\nIp6InTruncatedPkts 3\nIcmp6InMsgs 9\n")
	if a["Ip6InAddrErrors"] != 10 || a["Icmp6InMsgs"] != 2 || len(a) != 5 {
		t.Fatalf("%v", a)
	}
	if Delivered6(a, b) != 995 || Invalid6(a, b) != 3 {
		t.Errorf("delivered %d invalid %d", Delivered6(a, b), Invalid6(a, b))
	}
}

func TestParseSNMP(t *testing.T) {
	text := "Ip: Forwarding InHdrErrors InAddrErrors\nIp: 1 3 7\nUdp: InDatagrams NoPorts InErrors InCsumErrors\nUdp: 10 5 0 2\n"
	a := ParseSNMP(text)
	if a["Udp.NoPorts"] != 5 || a["Ip.InHdrErrors"] != 3 || a["Udp.InCsumErrors"] != 2 || a["Ip.InAddrErrors"] != 7 {
		t.Fatalf("%v", a)
	}
	b := ParseSNMP("Udp: InDatagrams NoPorts InErrors InCsumErrors\nUdp: 20 105 0 2\nIp: Forwarding InHdrErrors InAddrErrors\nIp: 1 3 117\n")
	if Delivered(a, b) != 110 || Invalid(a, b) != 0 {
		t.Errorf("delivered %d invalid %d", Delivered(a, b), Invalid(a, b))
	}
}

func TestPercentileAndPing(t *testing.T) {
	r := ParsePingRTTs("64 bytes from 198.51.100.2: icmp_seq=1 ttl=63 time=0.050 ms\n64 bytes from x: icmp_seq=2 ttl=63 time=0.070 ms\nrtt min/avg")
	if len(r) != 2 || r[1] != 0.070 {
		t.Fatalf("%v", r)
	}
	xs := []float64{5, 1, 4, 2, 3}
	if Percentile(xs, 50) != 3 || Percentile(xs, 99) != 5 {
		t.Errorf("p50 %v p99 %v", Percentile(xs, 50), Percentile(xs, 99))
	}
	if m, s := MedianSpread(xs); m != 3 || s != 4 {
		t.Errorf("median %v spread %v", m, s)
	}
}
