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

// FrameSpec describes the generator's frames. Src and Dst are both IPv4
// or both IPv6, and the family decides which frames Frame builds. Flows
// differ only in their UDP ports (source port for the first 64,000, then
// the destination port too), never in addresses, so the router's flow hash
// and tables see n distinct 5-tuples while its routing stays the same.
type FrameSpec struct {
	SrcMAC, DstMAC [6]byte
	Src, Dst       netip.Addr
	Size           int // Ethernet frame size with FCS, raised to the smallest frame that holds the headers
	DstPort        uint16
}

const (
	ethLen = 14
	ip4Len = 20
	ip6Len = 40
	udpLen = 8
)

// Frame builds flow i's frame: Ethernet, IPv4 or IPv6, and UDP with correct
// checksums, padded to Size-4 bytes (the size includes the FCS the NIC
// would add, as packet generators quote it). IPv6's longer header means
// the smallest IPv6/UDP frame is 66 bytes, not 64.
func (s FrameSpec) Frame(flow int) []byte {
	if s.Dst.Is6() {
		return s.frame6(flow)
	}
	return s.frame4(flow)
}

func (s FrameSpec) frame4(flow int) []byte {
	b := s.ethernet(ip4Len, 0x0800)
	ip := b[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], uint16(flow))
	ip[8], ip[9] = 64, 17
	src, dst := s.Src.As4(), s.Dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:ip4Len], 0))
	s.udp(ip[ip4Len:], flow, checksum.Checksum(dst[:], checksum.Checksum(src[:], 0)))
	return b
}

func (s FrameSpec) frame6(flow int) []byte {
	b := s.ethernet(ip6Len, 0x86DD)
	ip := b[ethLen:]
	// Version 6, traffic class and flow label 0: the flow label would give
	// the router's hash a field IPv4 lacks, and the flows must differ the
	// same way in both families.
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-ip6Len))
	ip[6], ip[7] = 17, 64 // next header UDP, hop limit
	src, dst := s.Src.As16(), s.Dst.As16()
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	s.udp(ip[ip6Len:], flow, checksum.Checksum(dst[:], checksum.Checksum(src[:], 0)))
	return b
}

// ethernet allocates the frame with its Ethernet header filled in, long
// enough for an ipLen-byte network header, UDP and the padding to Size.
func (s FrameSpec) ethernet(ipLen int, etherType uint16) []byte {
	b := make([]byte, max(s.Size-4, ethLen+ipLen+udpLen))
	copy(b[0:6], s.DstMAC[:])
	copy(b[6:12], s.SrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], etherType)
	return b
}

// udp fills the datagram u (header and payload) for flow, given the sum
// of the pseudo-header's addresses; the rest of the pseudo-header (protocol
// and UDP length) is the same in both families.
func (s FrameSpec) udp(u []byte, flow int, addrSum uint16) {
	binary.BigEndian.PutUint16(u[0:], uint16(1024+flow%64000))
	binary.BigEndian.PutUint16(u[2:], s.DstPort+uint16(flow/64000))
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	for i := udpLen; i < len(u); i++ {
		u[i] = byte(i)
	}
	var ph [4]byte
	ph[1] = 17
	binary.BigEndian.PutUint16(ph[2:], uint16(len(u)))
	sum := ^checksum.Checksum(u, checksum.Checksum(ph[:], addrSum))
	if sum == 0 {
		// Zero means "no checksum" in IPv4 and is forbidden in IPv6.
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
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

// SinkAddr6 is SinkAddr's IPv6 counterpart: an address in the sink's
// on-link prefix that the sink does not own, reached through a permanent
// neighbour entry with its MAC. A host that does not forward counts such
// a packet in Ip6InAddrErrors and drops it; a malformed header counts in
// Ip6InHdrErrors or, if shorter than its payload length says,
// Ip6InTruncatedPkts. IPv6 has no header checksum, and the sink never
// looks at the UDP checksum of a packet it does not accept, in either
// family.
const SinkAddr6 = "2001:db8:2::3"

// ParseSNMP6 reads /proc/net/snmp6's "Name value" lines into keys such as
// "Ip6InAddrErrors", as the file spells them.
func ParseSNMP6(text string) SNMP {
	out := SNMP{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = n
		}
	}
	return out
}

// Delivered6 is how many IPv6 packets reached the sink with a valid header
// between two readings of /proc/net/snmp6.
func Delivered6(before, after SNMP) uint64 {
	return after["Ip6InAddrErrors"] - before["Ip6InAddrErrors"]
}

// Invalid6 is how many IPv6 packets arrived damaged.
func Invalid6(before, after SNMP) uint64 {
	return after["Ip6InHdrErrors"] - before["Ip6InHdrErrors"] + after["Ip6InTruncatedPkts"] - before["Ip6InTruncatedPkts"]
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
