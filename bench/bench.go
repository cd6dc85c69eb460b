// Package bench measures ferry against the Linux kernel doing the same job
// in the same namespaces: a generator of ferry's own offers UDP frames on an
// AF_PACKET TX ring, the router under test forwards them, and the sink's
// kernel counts what arrives valid.
package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// Flow spreads traffic over n flows by source port (and, past 60000 flows,
// the low byte of the source address within 192.0.2.0/24 is kept; only
// ports vary), so the router's flow hash and tables see n distinct 5-tuples.
type FrameSpec struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       netip.Addr
	Size           int // Ethernet frame size without FCS (64 means 60 on the wire here + 4 FCS)
	DstPort        uint16
}

// Frame builds flow i's frame: Ethernet, IPv4 and UDP with correct
// checksums, padded to Size-4 bytes (the size excludes the FCS the NIC
// would add, as packet generators quote it).
func (s FrameSpec) Frame(flow int) []byte {
	n := s.Size - 4
	if n < 14+20+8 {
		n = 14 + 20 + 8
	}
	b := make([]byte, n)
	copy(b[0:6], s.DstMAC[:])
	copy(b[6:12], s.SrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], uint16(flow))
	ip[8], ip[9] = 64, 17
	src, dst := s.Src.As4(), s.Dst.As4()
	// Flows vary in source port (16 bits) and, beyond that, in the last
	// octet of the destination's neighbours would change routing; keep the
	// addresses fixed and fold larger counts into the destination port.
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	u := ip[20:]
	sport := uint16(1024 + flow%64000)
	dport := s.DstPort + uint16(flow/64000)
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	for i := 8; i < len(u); i++ {
		u[i] = byte(i)
	}
	// UDP checksum over the pseudo-header and the datagram.
	var ph [12]byte
	copy(ph[0:4], src[:])
	copy(ph[4:8], dst[:])
	ph[9] = 17
	binary.BigEndian.PutUint16(ph[10:], uint16(len(u)))
	sum := ^checksum.Checksum(u, checksum.Checksum(ph[:], 0))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	return b
}

// SNMP holds the counters of /proc/net/snmp the sink is judged by.
type SNMP map[string]uint64

// ParseSNMP reads /proc/net/snmp's "Proto: names" / "Proto: values" line
// pairs into keys like "Udp.NoPorts".
func ParseSNMP(text string) SNMP {
	out := SNMP{}
	sc := bufio.NewScanner(strings.NewReader(text))
	var names []string
	var proto string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		p := strings.TrimSuffix(f[0], ":")
		if names == nil || p != proto {
			proto, names = p, f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[proto+"."+names[i]] = uint64(n)
			}
		}
		names = nil
	}
	return out
}

// The sink is addressed as SinkAddr, an address the sink's host does not
// own, reached through a static neighbour entry with the host's MAC. The
// host does not forward, so its kernel verifies each packet's IPv4 header
// (bad ones count as InHdrErrors), finds it is not for it, and drops it
// counting Ip InAddrErrors, without the UDP delivery and ICMP port
// unreachable that would otherwise cost the router's core more than the
// routing being measured.
const SinkAddr = "198.51.100.3"

// Delivered is how many packets reached the sink with a valid IPv4 header
// between two readings.
func Delivered(before, after SNMP) uint64 {
	return after["Ip.InAddrErrors"] - before["Ip.InAddrErrors"]
}

// Invalid is how many arrived damaged.
func Invalid(before, after SNMP) uint64 {
	return after["Ip.InHdrErrors"] - before["Ip.InHdrErrors"] + after["Ip.InCsumErrors"] - before["Ip.InCsumErrors"]
}

// Percentile returns the p-th percentile (0..100) of xs by nearest rank.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Median and spread (max-min) of trial results.
func MedianSpread(xs []float64) (med, spread float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2], s[len(s)-1] - s[0]
}

// ParsePingRTTs extracts the per-probe rtt values (ms) from ping's output.
func ParsePingRTTs(out string) []float64 {
	var rtts []float64
	for _, l := range strings.Split(out, "\n") {
		i := strings.Index(l, "time=")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i+5:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			rtts = append(rtts, v)
		}
	}
	return rtts
}

// FormatRate prints packets per second compactly.
func FormatRate(pps float64) string {
	switch {
	case pps >= 1e6:
		return fmt.Sprintf("%.2f Mpps", pps/1e6)
	case pps >= 1e3:
		return fmt.Sprintf("%.0f kpps", pps/1e3)
	}
	return fmt.Sprintf("%.0f pps", pps)
}
