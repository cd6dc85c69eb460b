package dataplane

import (
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// local6 handles an IPv6 packet to one of ferry's addresses: hop-by-hop
// options ferry does not know are acted on as their type says (RFC 8200
// 4.2), echo requests are answered, UDP gets port unreachable (traceroute
// -6), and the rest is dropped with a reason.
func (w *worker) local6(p *Packet) {
	ip := header.IPv6(p.buf[p.l3 : p.off+p.n])
	if off, report, discard := unknownOption6(ip); discard {
		if report {
			w.icmp6Error(p, icmp6ParamProblem, icmp6UnknownOption, uint32(off), DropIP6ParamProblem)
		} else {
			p.Drop(DropIP6ParamProblem)
		}
		return
	}
	switch p.proto {
	case nhFragment:
		p.Drop(DropLocalFragment)
	case nhICMPv6:
		w.echo6(p, ip)
	case nhUDP:
		w.icmp6Error(p, icmp6DestUnreachable, icmp6PortUnreachable, 0, DropLocalPort)
	case nhTCP, nhNone:
		p.Drop(DropLocalProtocol)
	default:
		if p.l4 == p.l3+ipv6HdrLen {
			// RFC 8200 4: an unrecognised next header is a parameter
			// problem pointing at the field that names it.
			w.icmp6Error(p, icmp6ParamProblem, icmp6UnknownHeader, header.IPv6NextHeaderOffset, DropLocalProtocol)
		} else {
			p.Drop(DropLocalProtocol)
		}
	}
}

// echo6 turns an echo request into its reply in place (RFC 4443 4.2).
// Swapping the addresses leaves the pseudo-header sum unchanged, so only
// the type's change is folded into the checksum.
func (w *worker) echo6(p *Packet, ip header.IPv6) {
	m := header.ICMPv6(p.buf[p.l4 : p.off+p.n])
	if len(m) < icmp6HdrLen || m[0] != icmp6EchoRequest {
		p.Drop(DropLocalICMPIgnored)
		return
	}
	if !p.needsCsum() && !icmp6ChecksumOK(ip, m) {
		p.Drop(DropICMPBadChecksum)
		return
	}
	src, dst := ip.SourceAddressSlice(), ip.DestinationAddressSlice()
	a := addr6Of(src)
	copy(src, dst)
	copy(dst, a[:])
	ip.SetHopLimit(64)
	old := uint16(m[0])<<8 | uint16(m[1])
	m[0] = icmp6EchoReply
	if p.needsCsum() {
		clear(p.vnet())
		m.SetChecksum(icmp6Checksum(ip, m))
	} else {
		m.SetChecksum(csumUpdate16(m.Checksum(), old, uint16(m[0])<<8|uint16(m[1])))
	}
	if !w.routeLocal6(p) {
		p.Drop(DropICMPNoRoute)
	}
}
