package nat

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// ICMPv4 address mask request and reply (RFC 950), queries gvisor does not
// name.
const (
	icmpv4AddrMaskRequest header.ICMPv4Type = 17
	icmpv4AddrMaskReply   header.ICMPv4Type = 18
)

// ICMPQuery reports whether an ICMPv4 type is a query or its answer, the
// messages that carry an identifier NAT maps like a port (RFC 5508 3.1).
func ICMPQuery(t header.ICMPv4Type) bool {
	switch t {
	case header.ICMPv4Echo, header.ICMPv4EchoReply,
		header.ICMPv4Timestamp, header.ICMPv4TimestampReply,
		header.ICMPv4InfoRequest, header.ICMPv4InfoReply,
		icmpv4AddrMaskRequest, icmpv4AddrMaskReply:
		return true
	}
	return false
}

// ICMPError reports whether an ICMPv4 type is an error that quotes the
// packet it is about (RFC 5508 section 4).
func ICMPError(t header.ICMPv4Type) bool {
	switch t {
	case header.ICMPv4DstUnreachable, header.ICMPv4SrcQuench, header.ICMPv4Redirect,
		header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		return true
	}
	return false
}

// Incremental checksum arithmetic (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')),
// on uncomplemented ones'-complement sums. Every field NAT changes starts at
// an even offset of the data its checksum covers.

func sumReplace16(sum, old, new uint16) uint16 {
	if old == new {
		return sum
	}
	return checksum.Combine(sum, checksum.Combine(^old, new))
}

func sumReplace32(sum uint16, old, new [4]byte) uint16 {
	sum = sumReplace16(sum, binary.BigEndian.Uint16(old[0:2]), binary.BigEndian.Uint16(new[0:2]))
	return sumReplace16(sum, binary.BigEndian.Uint16(old[2:4]), binary.BigEndian.Uint16(new[2:4]))
}

// fieldReplace updates a complemented checksum field for a changed
// address and 16-bit word.
func fieldReplace(field uint16, oldA, newA [4]byte, oldW, newW uint16) uint16 {
	return ^sumReplace16(sumReplace32(^field, oldA, newA), oldW, newW)
}

// SetSource rewrites the IPv4 source address and the L4 source port (for
// ICMP queries the identifier) to ep; see SetDest.
func SetSource(ip header.IPv4, l4 []byte, ep Endpoint, partial bool) {
	rewrite(ip, l4, ep, partial, false)
}

// SetDest rewrites the IPv4 destination address and the L4 destination
// port — for ICMP queries (echo, timestamp, information, address mask and
// their replies) the identifier, whichever side it is — and updates every
// checksum incrementally (RFC 1624): the IPv4 header checksum, and the
// TCP, UDP (UDP-Lite) or ICMP checksum. A UDP checksum of 0 (none) stays 0,
// and one that would become 0 is sent as 0xffff.
//
// partial: the frame's L4 checksum is offloaded (virtio-net NEEDS_CSUM,
// Linux CHECKSUM_PARTIAL; always so for GSO super-frames): the field then
// holds the uncomplemented pseudo-header sum, which changes with the address
// only, not the port, and without complement (Linux
// inet_proto_csum_replace4 with pseudohdr). For ICMP nothing is to be done
// then (its checksum has no pseudo-header).
//
// l4 is the transport header and payload (ip[ihl:]). Non-first fragments
// have no L4 header: pass l4 = nil to change only the address (a non-zero
// fragment offset in ip is also taken to mean that). An L4 header too short
// to hold its checksum field is left alone. Packets shorter than an IPv4
// header are left alone; nothing panics. It allocates nothing.
func SetDest(ip header.IPv4, l4 []byte, ep Endpoint, partial bool) {
	rewrite(ip, l4, ep, partial, true)
}

func rewrite(ip header.IPv4, l4 []byte, ep Endpoint, partial, dst bool) {
	if len(ip) < header.IPv4MinimumSize {
		return
	}
	field := ip.SourceAddressSlice()
	if dst {
		field = ip.DestinationAddressSlice()
	}
	old := [4]byte(field)
	ip.SetChecksum(fieldReplace(ip.Checksum(), old, ep.Addr, 0, 0))
	copy(field, ep.Addr[:])
	if l4 == nil || ip.FragmentOffset() != 0 {
		return
	}
	switch ip.Protocol() {
	case ProtoTCP:
		if len(l4) < header.TCPMinimumSize {
			return
		}
		tcp := header.TCP(l4)
		oldPort := tcp.SourcePort()
		if dst {
			oldPort = tcp.DestinationPort()
			tcp.SetDestinationPort(ep.Port)
		} else {
			tcp.SetSourcePort(ep.Port)
		}
		if partial {
			tcp.SetChecksum(sumReplace32(tcp.Checksum(), old, ep.Addr))
		} else {
			tcp.SetChecksum(fieldReplace(tcp.Checksum(), old, ep.Addr, oldPort, ep.Port))
		}
	case ProtoUDP, ProtoUDPLite:
		if len(l4) < header.UDPMinimumSize {
			return
		}
		udp := header.UDP(l4)
		oldPort := udp.SourcePort()
		if dst {
			oldPort = udp.DestinationPort()
			udp.SetDestinationPort(ep.Port)
		} else {
			udp.SetSourcePort(ep.Port)
		}
		if partial {
			udp.SetChecksum(sumReplace32(udp.Checksum(), old, ep.Addr))
		} else if c := udp.Checksum(); c != 0 {
			c = fieldReplace(c, old, ep.Addr, oldPort, ep.Port)
			if c == 0 {
				c = 0xffff
			}
			udp.SetChecksum(c)
		}
	case ProtoICMP:
		if len(l4) < header.ICMPv4MinimumSize {
			return
		}
		icmp := header.ICMPv4(l4)
		if !ICMPQuery(icmp.Type()) {
			return // errors: see TranslateICMPError
		}
		oldID := icmp.Ident()
		icmp.SetIdent(ep.Port)
		if !partial {
			icmp.SetChecksum(^sumReplace16(^icmp.Checksum(), oldID, ep.Port))
		}
	}
}

// TranslateICMPError rewrites an ICMP error travelling back in through the
// NAT (from a remote, about a packet an inside host sent out through a
// mapping): the outer destination becomes outerDst, and in the quoted
// packet (which the remote saw leave the NAT) the quoted source becomes
// quotedSrc, address and port (for a quoted ICMP query, its identifier).
// The quoted IP header checksum, the quoted L4 checksum when the quote
// holds it (incrementally: a truncated quote's checksum still covers the
// whole original datagram; a quoted UDP checksum of 0 stays 0), the ICMP
// checksum and the outer IP header checksum all come out correct when they
// were correct.
//
// It reports false, changing nothing, when the packet is not an unfragmented
// (or first-fragment) ICMP error with a well-formed IPv4 quote long enough to
// carry the quoted ports (TCP, UDP, UDP-Lite) or identifier (an ICMP
// query): the caller should drop it. Quotes of non-first fragments and of
// other protocols are refused too. It allocates nothing.
func TranslateICMPError(ip header.IPv4, outerDst [4]byte, quotedSrc Endpoint) bool {
	return translateError(ip, true, outerDst, false, quotedSrc)
}

// TranslateICMPErrorDest is the opposite direction: an ICMP error from an
// inside host about a packet that came in through the NAT (a port forward,
// DNAT) travels out. The outer source becomes outerSrc (the NAT's external
// address when the inside source is masqueraded; pass the packet's own
// source to keep it), and the quoted destination becomes quotedDst — the
// external endpoint the remote sent to. Checksums and the result as for
// TranslateICMPError.
func TranslateICMPErrorDest(ip header.IPv4, outerSrc [4]byte, quotedDst Endpoint) bool {
	return translateError(ip, false, outerSrc, true, quotedDst)
}

func translateError(ip header.IPv4, outerIsDst bool, outer [4]byte, quotedIsDst bool, q Endpoint) bool {
	if len(ip) < header.IPv4MinimumSize {
		return false
	}
	ihl := int(ip.HeaderLength())
	total := int(ip.TotalLength())
	if header.IPVersion(ip) != header.IPv4Version || ihl < header.IPv4MinimumSize ||
		total < ihl || total > len(ip) || ip.Protocol() != ProtoICMP || ip.FragmentOffset() != 0 {
		return false
	}
	icmp := header.ICMPv4(ip.Payload())
	if len(icmp) < header.ICMPv4MinimumSize || !ICMPError(icmp.Type()) {
		return false
	}
	quote := header.IPv4(icmp.Payload())
	if len(quote) < header.IPv4MinimumSize || header.IPVersion(quote) != header.IPv4Version {
		return false
	}
	qihl := int(quote.HeaderLength())
	if qihl < header.IPv4MinimumSize || qihl > len(quote) || quote.FragmentOffset() != 0 {
		return false
	}
	ql4 := quote[qihl:]
	qproto := quote.Protocol()
	switch qproto {
	case ProtoTCP, ProtoUDP, ProtoUDPLite:
		if len(ql4) < 4 { // the two ports
			return false
		}
	case ProtoICMP:
		if len(ql4) < header.ICMPv4MinimumSize || !ICMPQuery(header.ICMPv4(ql4).Type()) {
			return false
		}
	default:
		return false
	}

	// The ICMP checksum covers the whole quote: collect every change in
	// its uncomplemented sum.
	isum := ^icmp.Checksum()

	// Quoted address and the quoted header's checksum.
	qfield := quote.SourceAddressSlice()
	if quotedIsDst {
		qfield = quote.DestinationAddressSlice()
	}
	qold := [4]byte(qfield)
	oldQC := quote.Checksum()
	newQC := fieldReplace(oldQC, qold, q.Addr, 0, 0)
	quote.SetChecksum(newQC)
	copy(qfield, q.Addr[:])
	isum = sumReplace16(sumReplace32(isum, qold, q.Addr), oldQC, newQC)

	// Quoted port or identifier, and the quoted L4 checksum when present.
	switch qproto {
	case ProtoTCP:
		tcp := header.TCP(ql4)
		oldPort := tcp.SourcePort()
		if quotedIsDst {
			oldPort = tcp.DestinationPort()
			tcp.SetDestinationPort(q.Port)
		} else {
			tcp.SetSourcePort(q.Port)
		}
		isum = sumReplace16(isum, oldPort, q.Port)
		if len(ql4) >= header.TCPChecksumOffset+2 {
			oldC := tcp.Checksum()
			newC := fieldReplace(oldC, qold, q.Addr, oldPort, q.Port)
			tcp.SetChecksum(newC)
			isum = sumReplace16(isum, oldC, newC)
		}
	case ProtoUDP, ProtoUDPLite:
		udp := header.UDP(ql4)
		oldPort := udp.SourcePort()
		if quotedIsDst {
			oldPort = udp.DestinationPort()
			udp.SetDestinationPort(q.Port)
		} else {
			udp.SetSourcePort(q.Port)
		}
		isum = sumReplace16(isum, oldPort, q.Port)
		if len(ql4) >= header.UDPMinimumSize {
			if oldC := udp.Checksum(); oldC != 0 {
				newC := fieldReplace(oldC, qold, q.Addr, oldPort, q.Port)
				if newC == 0 {
					newC = 0xffff
				}
				udp.SetChecksum(newC)
				isum = sumReplace16(isum, oldC, newC)
			}
		}
	case ProtoICMP:
		qicmp := header.ICMPv4(ql4)
		oldID := qicmp.Ident()
		qicmp.SetIdent(q.Port)
		isum = sumReplace16(isum, oldID, q.Port)
		oldC := qicmp.Checksum()
		newC := ^sumReplace16(^oldC, oldID, q.Port)
		qicmp.SetChecksum(newC)
		isum = sumReplace16(isum, oldC, newC)
	}
	icmp.SetChecksum(^isum)

	// Outer address (ICMP has no pseudo-header).
	ofield := ip.SourceAddressSlice()
	if outerIsDst {
		ofield = ip.DestinationAddressSlice()
	}
	oold := [4]byte(ofield)
	ip.SetChecksum(fieldReplace(ip.Checksum(), oold, outer, 0, 0))
	copy(ofield, outer[:])
	return true
}
