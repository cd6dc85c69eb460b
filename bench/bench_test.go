package bench

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

func TestFrameChecksums(t *testing.T) {
	s := FrameSpec{Src: netip.MustParseAddr("192.0.2.2"), Dst: netip.MustParseAddr("198.51.100.2"), Size: 64, DstPort: 9}
	for _, flow := range []int{0, 1, 65535, 999999} {
		f := s.Frame(flow)
		if len(f) != 60 {
			t.Fatalf("frame %d bytes, want 60", len(f))
		}
		ip := f[14:]
		if checksum.Checksum(ip[:20], 0) != 0xffff {
			t.Errorf("flow %d: bad IP checksum", flow)
		}
		u := ip[20:]
		var ph [12]byte
		copy(ph[0:4], ip[12:16])
		copy(ph[4:8], ip[16:20])
		ph[9] = 17
		binary.BigEndian.PutUint16(ph[10:], uint16(len(u)))
		if checksum.Checksum(u, checksum.Checksum(ph[:], 0)) != 0xffff {
			t.Errorf("flow %d: bad UDP checksum", flow)
		}
	}
	if a, b := s.Frame(1), s.Frame(2); string(a[34:38]) == string(b[34:38]) {
		t.Error("flows 1 and 2 share ports")
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
