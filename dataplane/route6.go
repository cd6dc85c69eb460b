package dataplane

import (
	"encoding/binary"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/fib"
)

// route6 is the route stage for IPv6: one batch lookup for every IPv6
// packet (or the policy rules, per packet, once rules are added), then the
// same outcomes as IPv4. Without rules, ferry's own global addresses are
// recognised before the lookup, as table local (rule 0) would. Link-local destinations are not in the FIB: a
// packet to ferry's own link-local address on the ingress port is
// delivered, any other is dropped (RFC 4291 2.5.6: never forwarded).
func (w *worker) route6() {
	policy := w.r.policyActive.Load()
	k := 0
	for _, p := range w.vec {
		if p.next != stageRoute || p.flags&flagIPv6 == 0 {
			continue
		}
		dst := header.IPv6(p.buf[p.l3:]).DestinationAddressSlice()
		if isLinkLocal6(dst) {
			if x := w.r.ports[p.in].v6.ll; string(x.a[:]) == string(dst) && x.usable() {
				p.next = stageLocalIn
			} else {
				p.Drop(DropIP6LinkLocal)
			}
			continue
		}
		if !policy && w.r.isLocal6(dst) {
			p.next = stageLocalIn
			continue
		}
		w.dsts6[k] = netip.AddrFrom16([16]byte(dst))
		k++
	}
	if k == 0 {
		return
	}
	if policy {
		k = 0
		for _, p := range w.vec {
			if p.next == stageRoute && p.flags&flagIPv6 != 0 {
				src := netip.AddrFrom16([16]byte(header.IPv6(p.buf[p.l3:]).SourceAddressSlice()))
				w.hops[k] = w.r.policy.Lookup6(fib.Flow6{Src: src, Dst: w.dsts6[k], IIf: p.in, Mark: p.mark})
				k++
			}
		}
	} else {
		w.r.fib.Lookup6Batch(w.dsts6[:k], w.hops[:k])
	}
	k = 0
	for _, p := range w.vec {
		if p.next != stageRoute || p.flags&flagIPv6 == 0 {
			continue
		}
		dst, h := w.dsts6[k], w.hops[k]
		k++
		if h != nil && h.Multi != nil {
			h = h.Pick(w.flowHash6(p))
		}
		w.applyRoute6(p, dst, h)
	}
}

// flowHash6 is flowHash for IPv6: the 5-tuple for TCP, UDP and SCTP that
// is not fragmented, the addresses otherwise.
func (w *worker) flowHash6(p *Packet) uint32 {
	ip := header.IPv6(p.buf[p.l3:])
	src := netip.AddrFrom16([16]byte(ip.SourceAddressSlice()))
	dst := netip.AddrFrom16([16]byte(ip.DestinationAddressSlice()))
	proto := p.proto
	var sport, dport uint16
	if (proto == nhTCP || proto == nhUDP || proto == 132) && p.l4+4 <= p.off+p.n {
		sport = binary.BigEndian.Uint16(p.buf[p.l4:])
		dport = binary.BigEndian.Uint16(p.buf[p.l4+2:])
	} else {
		proto = 0
	}
	return fib.FlowHash6(w.r.hashSeed, src, dst, proto, sport, dport)
}

func (w *worker) applyRoute6(p *Packet, dst netip.Addr, h *fib.NextHop) {
	if h == nil {
		w.icmp6Error(p, icmp6DestUnreachable, icmp6NoRoute, 0, DropNoRoute)
		return
	}
	switch h.Type {
	case fib.Unicast:
		p.hop, p.out = h, h.Dev
		p.nh6 = dst.As16()
		if h.Gateway6.IsValid() {
			p.nh6 = h.Gateway6.As16()
		}
		p.next = stageForward
	case fib.Local:
		p.hop = h
		p.next = stageLocalIn
	case fib.Blackhole:
		p.Drop(DropBlackhole)
	case fib.Unreachable:
		w.icmp6Error(p, icmp6DestUnreachable, icmp6NoRoute, 0, DropUnreachable)
	case fib.Prohibit:
		w.icmp6Error(p, icmp6DestUnreachable, icmp6AdminProhibited, 0, DropProhibit)
	default:
		p.Drop(DropNoRoute)
	}
}

// routeLocal6 routes an IPv6 packet ferry built (echo reply, ICMPv6 error)
// and sends it to postrouting; false if there is no unicast route back. A
// link-local destination is on the link the packet came in by.
func (w *worker) routeLocal6(p *Packet) bool {
	ip := header.IPv6(p.buf[p.l3:])
	d := ip.DestinationAddressSlice()
	if isLinkLocal6(d) {
		if p.in < 0 {
			return false
		}
		p.hop, p.out, p.nh6 = nil, p.in, [16]byte(d)
	} else {
		dst := netip.AddrFrom16([16]byte(d))
		var h *fib.NextHop
		if w.r.policyActive.Load() {
			src := netip.AddrFrom16([16]byte(ip.SourceAddressSlice()))
			h = w.r.policy.Lookup6(fib.Flow6{Src: src, Dst: dst, IIf: -1, Mark: p.mark})
		} else {
			h = w.r.fib.Lookup6(dst)
		}
		if h != nil && h.Multi != nil {
			h = h.Pick(w.flowHash6(p))
		}
		if h == nil || h.Type != fib.Unicast {
			return false
		}
		p.hop, p.out = h, h.Dev
		p.nh6 = dst.As16()
		if h.Gateway6.IsValid() {
			p.nh6 = h.Gateway6.As16()
		}
	}
	p.flags |= flagLocalOrigin | flagIPv6
	p.next = stageOutput
	return true
}
