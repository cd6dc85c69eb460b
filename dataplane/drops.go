package dataplane

// Drop is why a packet left the pipeline without being sent. Every drop is
// counted under exactly one reason, per port, and shown by
// `ferryctl show interfaces` and `show stats`. The names are fixed: scripts
// and dashboards match on them.
type Drop uint8

const (
	DropNone Drop = iota
	// input
	DropFrameTruncated   // shorter than an Ethernet header
	DropNotForUs         // unicast to another host's MAC (seen because the port is promiscuous)
	DropUnknownEtherType // neither IPv4, ARP nor IPv6
	DropIPTruncated      // frame shorter than 20 bytes of IPv4 or than its total length
	DropIPBadVersion     // version field is not 4
	DropIPBadIHL         // header length < 20 bytes or beyond the packet
	DropIPBadTotalLength // total length smaller than the header
	DropIPBadChecksum    // header checksum does not verify
	DropIPMartianSource  // source is 0/8, loopback, multicast or limited broadcast
	DropIPMartianDest    // destination is 0/8 or loopback
	DropBroadcast        // IP broadcast or multicast: a router does not forward them
	DropFrameTooBig      // larger than the ring slot or the worker's buffer
	// arp
	DropARPMalformed // not Ethernet/IPv4 ARP, or truncated
	DropARPNotForUs  // request or reply for an address that is not ferry's
	// route
	DropNoRoute     // no route; ICMP net unreachable sent
	DropBlackhole   // blackhole route: silent
	DropUnreachable // unreachable route; ICMP net unreachable sent
	DropProhibit    // prohibit route; ICMP administratively prohibited sent
	// local delivery
	DropICMPBadChecksum  // echo request whose ICMP checksum does not verify
	DropLocalPort        // UDP to ferry itself; ICMP port unreachable sent
	DropLocalProtocol    // protocol to ferry itself that it does not speak, or a TCP RST to it
	DropLocalICMPIgnored // ICMP to ferry that is not an echo request
	DropLocalFragment    // no longer used: fragments to ferry are reassembled (kept so numbers stay)
	// forward
	DropTTLExceeded // TTL <= 1; ICMP time exceeded sent
	DropFragNeeded  // DF set and larger than the egress MTU; ICMP frag needed sent
	DropGSOTooBig   // GSO frame whose segments exceed the egress MTU and may not be fragmented
	DropFragFailed  // no spare buffer to fragment into, or malformed options
	DropPortDown    // egress port is down or gone
	// neighbour
	DropNeighborFailed // ARP resolution failed; ICMP host unreachable sent
	DropNeighborQueue  // pushed out of a full unresolved-neighbour queue
	// ICMP errors ferry generated but did not send
	DropICMPRateLimited // per-destination ICMP error rate limit (like Linux icmp_ratelimit)
	DropICMPNoRoute     // no route back to the source of the offending packet
	DropICMPSuppressed  // never an error about an ICMP error, a non-first fragment or a broadcast
	// transmit and rings
	DropTxRingFull   // no free slot in the egress TX ring
	DropKernelRxRing // the kernel dropped frames because the RX ring was full
	DropTruncatedRx  // frame truncated by the ring (larger than a slot)
	// io-only mode (a benchmark floor)
	DropXconnectNoNeighbor // io-only: no static neighbour on the egress port to address the frame to
	// IPv4 router requirements (options, broadcasts, rp_filter, reassembly)
	DropIPBadOptions      // malformed IPv4 options; ICMP parameter problem sent
	DropSourceRoute       // loose or strict source route on a port without accept_source_route
	DropSourceRouteFailed // strict source route whose next address is not a neighbour; ICMP sent
	DropDirectedBroadcast // to the broadcast address of another connected network (bc_forwarding off)
	DropRPFilter          // source fails the ingress port's reverse-path filter
	DropLocalTCPClosed    // TCP segment to ferry (no TCP ports are open); RST sent
	DropTCPResetLimited   // RST to a closed port not sent: rate limit
	DropReasmTimeout      // fragments to ferry not completed within 30 s; ICMP time exceeded sent if the first came
	DropReasmOverlap      // fragment overlapping another of its datagram: the whole datagram is dropped
	DropReasmNoMemory     // fragment to ferry with every reassembly buffer busy
	DropReasmMalformed    // fragment to ferry with a bad length or offset
	// IPv6 (input6.go, forward6.go, nd.go, icmp6.go)
	DropIP6Truncated     // shorter than 40 bytes, or than 40 + payload length
	DropIP6BadVersion    // version field is not 6
	DropIP6BadLength     // payload length 0 (jumbograms are not supported) or a GSO frame without a segment size
	DropIP6MartianSource // source is multicast or loopback, or unspecified outside duplicate address detection
	DropIP6MartianDest   // destination is unspecified or loopback
	DropIP6BadExtHeaders // extension-header chain runs past the packet or holds more than 8 headers
	DropIP6Multicast     // multicast that is not Neighbor Discovery for ferry: never forwarded
	DropIP6LinkLocal     // link-local destination that is not ferry's: never forwarded off its link
	DropIP6BeyondScope   // link-local source would leave its link; ICMPv6 beyond scope sent
	DropHopLimitExceeded // hop limit <= 1; ICMPv6 time exceeded sent
	DropPacketTooBig     // larger than the egress MTU (IPv6 routers never fragment); ICMPv6 packet too big sent
	DropIP6ParamProblem  // malformed header, unknown option or next header for ferry; ICMPv6 parameter problem sent
	DropNDInvalid        // Neighbor Discovery that fails RFC 4861's validity checks (hop limit 255, code, checksum, options)
	DropNDNotForUs       // Neighbor Solicitation for an address that is not ferry's
	DropNDIgnored        // router advertisements and redirects from others: ferry configures none from them
	// Filter and connection tracking (filter.go, conntrack.go)
	DropFilterPrerouting  // dropped by the ruleset at the prerouting hook
	DropFilterInput       // dropped by the ruleset at the input hook (to ferry)
	DropFilterForward     // dropped by the ruleset at the forward hook
	DropFilterOutput      // one of ferry's own packets dropped at the output hook
	DropFilterPostrouting // dropped by the ruleset at the postrouting hook
	DropFilterReject      // rejected by the ruleset; ICMP error or TCP reset sent
	DropCtTableFull       // new flow with the connection table full and nothing unreplied to drop early
	DropCtReplyTaken      // new flow whose reply tuple another flow owns
	// NAT (nat.go)
	DropNATPoolExhausted // new flow to translate with every port of its pool taken
	DropNATTableFull     // new flow to translate with the mapping table full
	DropNATNoAddress     // masquerade out of a port with no IPv4 address
	DropNATBadICMP       // ICMP error about a translated flow whose quote is too short to translate
	// TUN and TAP ports (iface/tunqueue_linux.go)
	DropTunNotIP   // packet from a TUN that is neither IPv4 nor IPv6 (or empty)
	DropBadVnetHdr // virtio_net_hdr with nonsense values: unknown GSO type, gso_size 0, hdr_len or csum_start past the end

	numDrops
)

var dropNames = [numDrops]string{
	DropNone:               "none",
	DropFrameTruncated:     "frame_truncated",
	DropNotForUs:           "not_for_us",
	DropUnknownEtherType:   "unknown_ethertype",
	DropIPTruncated:        "ip_truncated",
	DropIPBadVersion:       "ip_bad_version",
	DropIPBadIHL:           "ip_bad_ihl",
	DropIPBadTotalLength:   "ip_bad_total_length",
	DropIPBadChecksum:      "ip_bad_checksum",
	DropIPMartianSource:    "ip_martian_source",
	DropIPMartianDest:      "ip_martian_destination",
	DropBroadcast:          "broadcast_not_forwarded",
	DropFrameTooBig:        "frame_too_big",
	DropARPMalformed:       "arp_malformed",
	DropARPNotForUs:        "arp_not_for_us",
	DropNoRoute:            "no_route",
	DropBlackhole:          "blackhole",
	DropUnreachable:        "unreachable_route",
	DropProhibit:           "prohibited",
	DropICMPBadChecksum:    "icmp_bad_checksum",
	DropLocalPort:          "local_port_unreachable",
	DropLocalProtocol:      "local_protocol_unsupported",
	DropLocalICMPIgnored:   "local_icmp_ignored",
	DropLocalFragment:      "local_fragment",
	DropTTLExceeded:        "ttl_exceeded",
	DropFragNeeded:         "frag_needed",
	DropGSOTooBig:          "gso_too_big",
	DropFragFailed:         "frag_failed",
	DropPortDown:           "port_down",
	DropNeighborFailed:     "neighbor_failed",
	DropNeighborQueue:      "neighbor_queue_overflow",
	DropICMPRateLimited:    "icmp_error_ratelimited",
	DropICMPNoRoute:        "icmp_error_no_route",
	DropICMPSuppressed:     "icmp_error_suppressed",
	DropTxRingFull:         "tx_ring_full",
	DropKernelRxRing:       "rx_ring_full",
	DropTruncatedRx:        "rx_truncated",
	DropXconnectNoNeighbor: "xconnect_no_neighbor",
	DropIPBadOptions:       "ip_bad_options",
	DropSourceRoute:        "source_route",
	DropSourceRouteFailed:  "source_route_failed",
	DropDirectedBroadcast:  "directed_broadcast",
	DropRPFilter:           "rp_filter",
	DropLocalTCPClosed:     "local_tcp_closed",
	DropTCPResetLimited:    "tcp_reset_ratelimited",
	DropReasmTimeout:       "reassembly_timeout",
	DropReasmOverlap:       "reassembly_overlap",
	DropReasmNoMemory:      "reassembly_no_memory",
	DropReasmMalformed:     "reassembly_malformed",
	DropIP6Truncated:       "ip6_truncated",
	DropIP6BadVersion:      "ip6_bad_version",
	DropIP6BadLength:       "ip6_bad_payload_length",
	DropIP6MartianSource:   "ip6_martian_source",
	DropIP6MartianDest:     "ip6_martian_destination",
	DropIP6BadExtHeaders:   "ip6_bad_extension_headers",
	DropIP6Multicast:       "ip6_multicast_not_forwarded",
	DropIP6LinkLocal:       "ip6_link_local_not_forwarded",
	DropIP6BeyondScope:     "ip6_beyond_scope",
	DropHopLimitExceeded:   "hop_limit_exceeded",
	DropPacketTooBig:       "packet_too_big",
	DropIP6ParamProblem:    "ip6_parameter_problem",
	DropNDInvalid:          "nd_invalid",
	DropNDNotForUs:         "nd_not_for_us",
	DropNDIgnored:          "nd_ignored",
	DropFilterPrerouting:   "filter_prerouting",
	DropFilterInput:        "filter_input",
	DropFilterForward:      "filter_forward",
	DropFilterOutput:       "filter_output",
	DropFilterPostrouting:  "filter_postrouting",
	DropFilterReject:       "filter_reject",
	DropCtTableFull:        "ct_table_full",
	DropCtReplyTaken:       "ct_reply_taken",
	DropNATPoolExhausted:   "nat_pool_exhausted",
	DropNATTableFull:       "nat_table_full",
	DropNATNoAddress:       "nat_no_address",
	DropNATBadICMP:         "nat_bad_icmp",
	DropTunNotIP:           "tun_not_ip",
	DropBadVnetHdr:         "vnet_hdr_invalid",
}

func (d Drop) String() string {
	if d < numDrops {
		return dropNames[d]
	}
	return "unknown"
}

// DropReasons lists every reason name in a stable order, for documentation
// and tests.
func DropReasons() []string {
	out := make([]string, 0, numDrops-1)
	for d := DropNone + 1; d < numDrops; d++ {
		out = append(out, dropNames[d])
	}
	return out
}
