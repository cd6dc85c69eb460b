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
	nhField, rh := chain6(ip)
	if rh > 0 {
		// RFC 8200 4.4: ferry implements no routing header type, and one
		// with segments left is answered with a parameter problem
		// pointing at its type (type 0 is deprecated by RFC 5095 too).
		w.icmp6Error(p, icmp6ParamProblem, icmp6ErroneousHeader, uint32(rh+2), DropIP6ParamProblem)
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
		// RFC 8200 4: an unrecognised next header is a parameter problem
		// pointing at the field that names it.
		w.icmp6Error(p, icmp6ParamProblem, icmp6UnknownHeader, uint32(nhField), DropLocalProtocol)
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

// chain6 walks a packet's extension headers again (input checked the
// chain) for local delivery's two questions: the offset of the next-header
// field that names the upper layer, and the offset of a routing header
// with segments left, or 0.
func chain6(ip header.IPv6) (nhField, rh int) {
	proto, off := ip.NextHeader(), ipv6HdrLen
	nhField = header.IPv6NextHeaderOffset
	for i := 0; i <= maxExtHdrs6 && off+8 <= len(ip); i++ {
		var n int
		switch proto {
		case nhHopByHop, nhRouting, nhDestOpts, nhMobility, nhHIP, nhShim6:
			n = (int(ip[off+1]) + 1) * 8
			if proto == nhRouting && ip[off+3] != 0 && rh == 0 {
				rh = off
			}
		case nhAH:
			n = (int(ip[off+1]) + 2) * 4
		default:
			return nhField, rh
		}
		nhField = off
		proto, off = ip[off], off+n
	}
	return nhField, rh
}
