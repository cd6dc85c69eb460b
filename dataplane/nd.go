package dataplane

import (
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/dataplane/neigh"
)

// Neighbor Discovery (RFC 4861) for IPv6 over Ethernet: what ARP is to
// IPv4. ferry answers solicitations for its addresses, learns neighbours
// from what they send, resolves next hops through the same neighbour table
// and timers as ARP (keys with an IPv6 address), and notes router
// solicitations for the router advertisement timer (ra.go).

// ND message layout after the ICMPv6 header's first 8 bytes.
const (
	ndNSLen        = 24 // ICMPv6 header + target (RFC 4861 4.3)
	ndNALen        = 24 // 4.4
	ndRSLen        = 8  // 4.1
	ndOffTarget    = 8
	ndOptSLLA      = 1
	ndOptTLLA      = 2
	ndOptPrefix    = 3
	ndOptMTU       = 5
	ndOptRDNSS     = 25
	ndNAFlagRouter = 0x80
	ndNAFlagSolic  = 0x40
	ndNAFlagOver   = 0x20
	ndHopLimit     = 255
	ndFrameLen     = ethHdrLen + ipv6HdrLen + ndNSLen + 8 // NS or NA with one link-layer address option
)

// nd handles every Neighbor Discovery message input found, after the
// validity checks RFC 4861 asks of each type (6.1.1, 7.1.1, 7.1.2): hop
// limit 255 (it cannot have crossed a router), code 0, a good checksum, the
// type's minimum length, and options that each have a non-zero length and
// fit.
func (w *worker) nd() {
	for _, p := range w.vec {
		if p.next != stageND {
			continue
		}
		ip := header.IPv6(p.buf[p.l3 : p.off+p.n])
		m := header.ICMPv6(p.buf[p.l4 : p.off+p.n])
		min := map6MinLen(m[0])
		if len(m) < min || ip.HopLimit() != ndHopLimit || m.Code() != 0 || !icmp6ChecksumOK(ip, m) {
			p.Drop(DropNDInvalid)
			continue
		}
		lla, hasLLA, ok := ndLinkAddr(m[min:], m[0])
		if !ok {
			p.Drop(DropNDInvalid)
			continue
		}
		switch m[0] {
		case icmp6NeighborSolicit:
			w.ns(p, ip, m, lla, hasLLA)
		case icmp6NeighborAdvert:
			w.na(p, ip, m, lla, hasLLA)
		case icmp6RouterSolicit:
			w.rs(p, ip, lla, hasLLA)
		default:
			// Router advertisements and redirects from other routers:
			// ferry's routes are its own configuration.
			p.Drop(DropNDIgnored)
		}
	}
}

func map6MinLen(t byte) int {
	switch t {
	case icmp6NeighborSolicit:
		return ndNSLen
	case icmp6NeighborAdvert:
		return ndNALen
	case icmp6RouterSolicit:
		return ndRSLen
	case icmp6RouterAdvert:
		return 16
	}
	return 40 // redirect
}

// ndLinkAddr walks ND options, checking each has a length that is not zero
// and fits, and returns the link-layer address option that matters for
// the message type: the source's for NS and RS, the target's for NA.
func ndLinkAddr(opts []byte, typ byte) (mac [6]byte, has, ok bool) {
	want := byte(ndOptSLLA)
	if typ == icmp6NeighborAdvert {
		want = ndOptTLLA
	}
	for len(opts) > 0 {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return mac, false, false
		}
		n := int(opts[1]) * 8
		if opts[0] == want && n >= 8 {
			mac, has = [6]byte(opts[2:8]), true
		}
		opts = opts[n:]
	}
	return mac, has, true
}

// ns answers a solicitation for one of ferry's addresses on the ingress
// port with an advertisement, built in place, and learns the sender.
func (w *worker) ns(p *Packet, ip header.IPv6, m header.ICMPv6, lla [6]byte, hasLLA bool) {
	src, dst := ip.SourceAddressSlice(), ip.DestinationAddressSlice()
	target := addr6Of(m[ndOffTarget:])
	dad := isUnspecified6(src)
	// 7.1.1: the target is not multicast; from ::, the destination is a
	// solicited-node group and there is no source link-layer address.
	if target[0] == 0xff || (dad && (hasLLA || !isSolicitedNode6(dst))) {
		p.Drop(DropNDInvalid)
		return
	}
	port := w.r.ports[p.in]
	x := port.v6.own(target[:])
	switch {
	case x == nil || x.off.Load():
		p.Drop(DropNDNotForUs)
		return
	case x.tentative.Load():
		// RFC 4862 5.4.3: another node probing the same tentative address
		// means it is a duplicate; any other solicitation is ignored.
		if dad && [6]byte(p.srcMAC()) != port.mac {
			x.conflict.Store(true)
		}
		p.next, p.drop = stageDone, DropNone
		return
	}
	w.ctr.local.Add(1)
	from := addr6Of(src)
	ethDst := [6]byte(p.srcMAC())
	flags := byte(ndNAFlagRouter | ndNAFlagSolic | ndNAFlagOver)
	if dad {
		// 7.2.4: defend the address with an advertisement to all nodes.
		from, ethDst, flags = allNodes6, allNodesMAC, ndNAFlagRouter|ndNAFlagOver
	} else if hasLLA {
		w.release6(p.in, from, w.r.neigh.Confirm(neigh.Key{Port: p.in, IP6: from}, lla, w.now, false))
		ethDst = lla
	}
	n := buildND(p.buf[p.off:], icmp6NeighborAdvert, ethDst, port.mac, target, from, target, flags, ndOptTLLA, port.mac)
	p.n = n
	clear(p.vnet())
	p.out = p.in
	p.flags |= flagLocalOrigin | flagMACSet
	p.next = stageTransmit
}

// na learns from an advertisement (7.2.5): it completes a resolution in
// progress, or updates an entry ferry already has (an unsolicited NA with
// the override flag moves it to the new address). Without an entry it is
// ignored, as the RFC says. An advertisement for one of ferry's tentative
// addresses means duplicate address detection failed.
func (w *worker) na(p *Packet, ip header.IPv6, m header.ICMPv6, lla [6]byte, hasLLA bool) {
	target := addr6Of(m[ndOffTarget:])
	flags := m[4]
	if target[0] == 0xff || (ip.DestinationAddressSlice()[0] == 0xff && flags&ndNAFlagSolic != 0) {
		p.Drop(DropNDInvalid)
		return
	}
	p.next, p.drop = stageDone, DropNone
	w.ctr.local.Add(1)
	port := w.r.ports[p.in]
	if x := port.v6.own(target[:]); x != nil {
		if x.tentative.Load() && [6]byte(p.srcMAC()) != port.mac {
			x.conflict.Store(true)
		}
		return
	}
	k := neigh.Key{Port: p.in, IP6: target}
	e := w.r.neigh.Lookup(k)
	if e == nil || !hasLLA {
		return
	}
	if mac, usable := e.MAC(); usable && mac != lla && flags&ndNAFlagOver == 0 {
		// 7.2.5: without the override flag a different address does not
		// replace a known one.
		return
	}
	w.release6(p.in, target, w.r.neigh.Confirm(k, lla, w.now, flags&ndNAFlagSolic != 0))
}

// rs notes a router solicitation on a port that advertises, so the
// control goroutine answers it (ra.go), and learns the sender.
func (w *worker) rs(p *Packet, ip header.IPv6, lla [6]byte, hasLLA bool) {
	src := ip.SourceAddressSlice()
	if isUnspecified6(src) && hasLLA {
		p.Drop(DropNDInvalid) // 6.1.1
		return
	}
	port := w.r.ports[p.in]
	if port.v6.ra == nil {
		p.Drop(DropNDIgnored)
		return
	}
	w.ctr.local.Add(1)
	port.v6.solicited.Store(true)
	if hasLLA {
		from := addr6Of(src)
		k := neigh.Key{Port: p.in, IP6: from}
		if e := w.r.neigh.Lookup(k); e == nil || e.State() != neigh.Permanent {
			w.release6(p.in, from, w.r.neigh.Confirm(k, lla, w.now, false))
		}
	}
	p.next, p.drop = stageDone, DropNone
}

var (
	allNodes6   = [16]byte{0: 0xff, 1: 0x02, 15: 1}
	allNodesMAC = [6]byte{0x33, 0x33, 0, 0, 0, 1}
)

// solicitedNode6 is the solicited-node multicast group of a (RFC 4291
// 2.7.1) and its Ethernet group address (RFC 2464 7).
func solicitedNode6(a [16]byte) ([16]byte, [6]byte) {
	g := [16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
	return g, multicastMAC6(g)
}

func multicastMAC6(g [16]byte) [6]byte {
	return [6]byte{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

func isSolicitedNode6(a []byte) bool {
	return string(a[:13]) == "\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff"
}

// buildND writes an Ethernet frame holding a neighbour solicitation or
// advertisement at b (ndFrameLen bytes or more) and returns its length.
// optType 0 sends no link-layer address option (an NS for DAD).
func buildND(b []byte, typ byte, ethDst, ethSrc [6]byte, src, dst, target [16]byte, flags byte, optType byte, lla [6]byte) int {
	n := ndFrameLen
	if optType == 0 {
		n -= 8
	}
	copy(b[0:6], ethDst[:])
	copy(b[6:12], ethSrc[:])
	b[12], b[13] = etherTypeIPv6>>8, etherTypeIPv6&0xff
	ip := header.IPv6(b[ethHdrLen:n])
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n - ethHdrLen - ipv6HdrLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          ndHopLimit,
	})
	copy(ip.SourceAddressSlice(), src[:])
	copy(ip.DestinationAddressSlice(), dst[:])
	m := header.ICMPv6(ip[ipv6HdrLen:])
	clear(m)
	m[0] = typ
	m[4] = flags
	copy(m[ndOffTarget:], target[:])
	if optType != 0 {
		o := m[ndNSLen:]
		o[0], o[1] = optType, 1
		copy(o[2:8], lla[:])
	}
	m.SetChecksum(icmp6Checksum(ip, m))
	return n
}

// sendNS queues a solicitation for target on port in this batch: to its
// solicited-node group, from ferry's address on the port for target.
func (w *worker) sendNS(port int, target [16]byte) {
	pt := w.r.ports[port]
	src, ok := pt.v6.source6(target[:])
	if !ok {
		return // still tentative: the table retries on its next tick
	}
	s := w.takeSpare()
	if s == nil {
		return
	}
	g, gmac := solicitedNode6(target)
	n := buildND(s.buf[Headroom:], icmp6NeighborSolicit, gmac, pt.mac, src, g, target, 0, ndOptSLLA, pt.mac)
	s.setFrame(Headroom, n)
	s.out = port
	s.flags |= flagLocalOrigin | flagMACSet | flagIPv6
	s.next = stageTransmit
	w.vec = append(w.vec, s)
}

// release6 is release for IPv6: frames that waited for ip on port go back
// into the batch at the neighbour stage.
func (w *worker) release6(port int, ip [16]byte, queued [][]byte) {
	for _, q := range queued {
		s := w.unpark(q)
		if s == nil {
			w.ctr.ports[port].drops[DropNeighborQueue].Add(1)
			continue
		}
		reparse6(s)
		s.out, s.nh6 = port, ip
		s.next = stageNeighbour
	}
}

// reparse6 restores what input6 found about a packet that was parked as a
// bare frame.
func reparse6(p *Packet) {
	p.flags |= flagIPv6
	proto, l4, bad := walkExt6(header.IPv6(p.buf[p.l3 : p.off+p.n]))
	if bad != 0 {
		proto, l4 = nhNone, ipv6HdrLen
	}
	p.proto, p.l4 = proto, p.l3+l4
}

// neighborFailed answers a packet whose next hop did not resolve: ICMP
// host unreachable for IPv4, ICMPv6 address unreachable (RFC 4443 3.1
// code 3) for IPv6.
func (w *worker) neighborFailed(p *Packet) {
	if p.etherType() == etherTypeIPv6 {
		reparse6(p)
		w.icmp6Error(p, icmp6DestUnreachable, icmp6AddrUnreachable, 0, DropNeighborFailed)
		return
	}
	w.icmpError(p, icmpDestUnreachable, icmpHostUnreachable, 0, DropNeighborFailed)
}

// sendNS sends the solicitation a neighbour timer asks for: to the
// solicited-node group while resolving, to the known MAC when probing.
func (r *Router) sendNS(p *port, a neigh.Action) {
	src, ok := p.v6.source6(a.Key.IP6[:])
	if !ok {
		return
	}
	dst, dmac := solicitedNode6(a.Key.IP6)
	if a.Kind == neigh.SendUnicastProbe {
		dst, dmac = a.Key.IP6, a.MAC
	}
	var frame [ndFrameLen]byte
	n := buildND(frame[:], icmp6NeighborSolicit, dmac, p.mac, src, dst, a.Key.IP6, 0, ndOptSLLA, p.mac)
	if err := p.link.SendControl(frame[:n]); err != nil {
		r.log.Debug("neighbour solicitation send failed", "port", p.name, "err", err)
	}
}
