package filter

// What each match field reads, what values it takes, and what it needs
// from the packet (its nft "dependency"): the family, the L4 protocol,
// and whether the L4 header must be present.

type valKind uint8

const (
	vInt     valKind = iota // integers, ranges, symbolic names
	vAddr4                  // IPv4 addresses, prefixes, ranges
	vAddr6                  // IPv6 addresses, prefixes, ranges
	vIfname                 // interface names, "eth*" wildcards
	vIfindex                // interface names without wildcards
)

type fieldInfo struct {
	name    string
	kind    valKind
	names   []name // symbolic values
	max     uint32
	fam     uint8   // 4 or 6: the packet must be of that family; 0: any
	protos  []uint8 // the packet's L4 protocol must be one of these
	l4      bool    // the first L4 bytes must be present (Packet.HasPorts)
	flags   bool    // a bit mask: bare lists mean "any of these bits"
	hex     bool    // printed in hex, as nft prints marks
	setType SetType // the named set type it may look up
}

var (
	tcpOnly    = []uint8{ProtoTCP}
	udpOnly    = []uint8{ProtoUDP}
	icmpOnly   = []uint8{ProtoICMP}
	icmpv6Only = []uint8{ProtoICMPv6}
)

var fields = [numFields]fieldInfo{
	FIifname:    {name: "iifname", kind: vIfname},
	FOifname:    {name: "oifname", kind: vIfname},
	FIif:        {name: "iif", kind: vIfindex},
	FOif:        {name: "oif", kind: vIfindex},
	FIPSaddr:    {name: "ip saddr", kind: vAddr4, fam: 4, setType: SetIPv4},
	FIPDaddr:    {name: "ip daddr", kind: vAddr4, fam: 4, setType: SetIPv4},
	FIP6Saddr:   {name: "ip6 saddr", kind: vAddr6, fam: 6, setType: SetIPv6},
	FIP6Daddr:   {name: "ip6 daddr", kind: vAddr6, fam: 6, setType: SetIPv6},
	FIPProtocol: {name: "ip protocol", names: protoNames, max: 255, fam: 4, setType: SetProto},
	FIP6Nexthdr: {name: "ip6 nexthdr", names: protoNames, max: 255, fam: 6, setType: SetProto},
	FL4Proto:    {name: "meta l4proto", names: protoNames, max: 255, setType: SetProto},
	FNfproto:    {name: "meta nfproto", names: nfprotoNames, max: 255},
	FTCPSport:   {name: "tcp sport", max: 65535, protos: tcpOnly, l4: true, setType: SetService},
	FTCPDport:   {name: "tcp dport", max: 65535, protos: tcpOnly, l4: true, setType: SetService},
	FUDPSport:   {name: "udp sport", max: 65535, protos: udpOnly, l4: true, setType: SetService},
	FUDPDport:   {name: "udp dport", max: 65535, protos: udpOnly, l4: true, setType: SetService},
	FTHSport:    {name: "th sport", max: 65535, protos: portProtos, l4: true, setType: SetService},
	FTHDport:    {name: "th dport", max: 65535, protos: portProtos, l4: true, setType: SetService},
	FICMPType:   {name: "icmp type", names: icmpTypeNames, max: 255, fam: 4, protos: icmpOnly, l4: true},
	FICMPCode:   {name: "icmp code", names: icmpCodeNames, max: 255, fam: 4, protos: icmpOnly, l4: true},
	FICMPv6Type: {name: "icmpv6 type", names: icmpv6TypeNames, max: 255, fam: 6, protos: icmpv6Only, l4: true},
	FICMPv6Code: {name: "icmpv6 code", names: icmpv6CodeNames, max: 255, fam: 6, protos: icmpv6Only, l4: true},
	FTCPFlags:   {name: "tcp flags", names: tcpFlagNames, max: 255, protos: tcpOnly, l4: true, flags: true},
	FCtState:    {name: "ct state", names: ctStateNames, max: 31, flags: true},
	FCtMark:     {name: "ct mark", max: ^uint32(0), hex: true, setType: SetMark},
	FMark:       {name: "meta mark", max: ^uint32(0), hex: true, setType: SetMark},
	FMetaLength: {name: "meta length", max: ^uint32(0)},
	FIPLength:   {name: "ip length", max: 65535, fam: 4},
	FIPDscp:     {name: "ip dscp", names: dscpNames, max: 63, fam: 4},
	FIP6Dscp:    {name: "ip6 dscp", names: dscpNames, max: 63, fam: 6},
}

// fieldWords maps "first second" (or one word) as written to a field.
var fieldWords = map[string]Field{
	"iifname": FIifname, "oifname": FOifname, "iif": FIif, "oif": FOif,
	"meta iifname": FIifname, "meta oifname": FOifname, "meta iif": FIif, "meta oif": FOif,
	"ip saddr": FIPSaddr, "ip daddr": FIPDaddr, "ip6 saddr": FIP6Saddr, "ip6 daddr": FIP6Daddr,
	"ip protocol": FIPProtocol, "ip6 nexthdr": FIP6Nexthdr,
	"meta l4proto": FL4Proto, "l4proto": FL4Proto, "meta nfproto": FNfproto, "nfproto": FNfproto,
	"tcp sport": FTCPSport, "tcp dport": FTCPDport, "udp sport": FUDPSport, "udp dport": FUDPDport,
	"th sport": FTHSport, "th dport": FTHDport,
	"icmp type": FICMPType, "icmp code": FICMPCode, "icmpv6 type": FICMPv6Type, "icmpv6 code": FICMPv6Code,
	"tcp flags": FTCPFlags, "ct state": FCtState, "ct mark": FCtMark,
	"meta mark": FMark, "mark": FMark, "meta length": FMetaLength, "length": FMetaLength,
	"ip length": FIPLength, "ip dscp": FIPDscp, "ip6 dscp": FIP6Dscp,
}

// protoName names an L4 protocol for messages.
func protoName(p uint8) string {
	if s, ok := nameOf(protoNames, uint32(p)); ok {
		return s
	}
	return "protocol " + itoa(int(p))
}
