package filter

import "strconv"

// Name tables for the symbolic constants nft prints. Each table maps a
// name to its value; printing picks the first name listed for a value, so
// the canonical spelling comes first where two names share a value.

type name struct {
	s string
	v uint32
}

func lookupName(tab []name, s string) (uint32, bool) {
	for _, n := range tab {
		if n.s == s {
			return n.v, true
		}
	}
	return 0, false
}

func nameOf(tab []name, v uint32) (string, bool) {
	for _, n := range tab {
		if n.v == v {
			return n.s, true
		}
	}
	return "", false
}

// IP protocol numbers (IANA) nft knows by name.
const (
	ProtoICMP    = 1
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoDCCP    = 33
	ProtoGRE     = 47
	ProtoESP     = 50
	ProtoAH      = 51
	ProtoICMPv6  = 58
	ProtoSCTP    = 132
	ProtoUDPLite = 136
)

var protoNames = []name{
	{"icmp", ProtoICMP}, {"igmp", 2}, {"tcp", ProtoTCP}, {"udp", ProtoUDP},
	{"dccp", ProtoDCCP}, {"ipv6", 41}, {"gre", ProtoGRE}, {"esp", ProtoESP},
	{"ah", ProtoAH}, {"icmpv6", ProtoICMPv6}, {"ipv6-icmp", ProtoICMPv6},
	{"sctp", ProtoSCTP}, {"udplite", ProtoUDPLite},
}

// portProtos are the protocols whose first four L4 bytes are source and
// destination ports: what nft's `th` (transport header) reads.
var portProtos = []uint8{ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP, ProtoUDPLite}

var icmpTypeNames = []name{
	{"echo-reply", 0}, {"destination-unreachable", 3}, {"source-quench", 4},
	{"redirect", 5}, {"echo-request", 8}, {"router-advertisement", 9},
	{"router-solicitation", 10}, {"time-exceeded", 11}, {"parameter-problem", 12},
	{"timestamp-request", 13}, {"timestamp-reply", 14}, {"info-request", 15},
	{"info-reply", 16}, {"address-mask-request", 17}, {"address-mask-reply", 18},
}

var icmpv6TypeNames = []name{
	{"destination-unreachable", 1}, {"packet-too-big", 2}, {"time-exceeded", 3},
	{"parameter-problem", 4}, {"echo-request", 128}, {"echo-reply", 129},
	{"mld-listener-query", 130}, {"mld-listener-report", 131},
	{"mld-listener-done", 132}, {"mld-listener-reduction", 132},
	{"nd-router-solicit", 133}, {"nd-router-advert", 134},
	{"nd-neighbor-solicit", 135}, {"nd-neighbor-advert", 136},
	{"nd-redirect", 137}, {"router-renumbering", 138},
	{"ind-neighbor-solicit", 141}, {"ind-neighbor-advert", 142},
	{"mld2-listener-report", 143},
}

var icmpCodeNames = []name{
	{"net-unreachable", 0}, {"host-unreachable", 1}, {"prot-unreachable", 2},
	{"port-unreachable", 3}, {"frag-needed", 4}, {"net-prohibited", 9},
	{"host-prohibited", 10}, {"admin-prohibited", 13},
}

var icmpv6CodeNames = []name{
	{"no-route", 0}, {"admin-prohibited", 1}, {"addr-unreachable", 3},
	{"port-unreachable", 4}, {"policy-fail", 5}, {"reject-route", 6},
}

// TCP header flag bits (RFC 793, RFC 3168).
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40
	TCPCwr = 0x80
)

var tcpFlagNames = []name{
	{"fin", TCPFin}, {"syn", TCPSyn}, {"rst", TCPRst}, {"psh", TCPPsh},
	{"ack", TCPAck}, {"urg", TCPUrg}, {"ecn", TCPEce}, {"cwr", TCPCwr},
}

// Connection tracking states as a bit mask in Packet.CtState. The
// dataplane maps the conntrack package's states onto these bits; exactly
// one is set for a packet.
const (
	CtNew         = 1
	CtEstablished = 2
	CtRelated     = 4
	CtInvalid     = 8
	CtUntracked   = 16
)

var ctStateNames = []name{
	{"invalid", CtInvalid}, {"established", CtEstablished}, {"related", CtRelated},
	{"new", CtNew}, {"untracked", CtUntracked},
}

// DSCP code points (RFC 2474, 2597, 3246, 5865, 8622).
var dscpNames = []name{
	{"cs0", 0}, {"cs1", 8}, {"cs2", 16}, {"cs3", 24}, {"cs4", 32}, {"cs5", 40},
	{"cs6", 48}, {"cs7", 56}, {"be", 0}, {"af11", 10}, {"af12", 12}, {"af13", 14},
	{"af21", 18}, {"af22", 20}, {"af23", 22}, {"af31", 26}, {"af32", 28},
	{"af33", 30}, {"af41", 34}, {"af42", 36}, {"af43", 38}, {"va", 44},
	{"ef", 46}, {"le", 1},
}

var nfprotoNames = []name{{"ipv4", 2}, {"ipv6", 10}}

// Standard chain priorities by name, as nft defines them.
var priorityNames = []struct {
	s string
	v int
}{
	{"raw", -300}, {"mangle", -150}, {"dstnat", -100}, {"filter", 0},
	{"security", 50}, {"srcnat", 100},
}

var logLevels = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"}

// flagList prints a bit mask as nft's comma list of flag names.
func flagList(tab []name, v uint32, sep string) string {
	s := ""
	for _, n := range tab {
		if v&n.v != 0 {
			if s != "" {
				s += sep
			}
			s += n.s
			v &^= n.v
		}
	}
	if v != 0 || s == "" {
		if s != "" {
			s += sep
		}
		s += "0x" + strconv.FormatUint(uint64(v), 16)
	}
	return s
}
