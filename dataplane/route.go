package dataplane

import (
	"encoding/binary"

	"github.com/ferry-router/ferry/fib"
)

// route looks up every live packet's destination with one batch call, then
// sends each to local delivery, on to forward, or turns it into the ICMP
// error its route asks for. While the only rules are the built-in ones
// (local, then main) a lookup in main decides, since main also holds the
// local routes; once rules are added, every packet walks them.
func (w *worker) route() {
	policy := w.r.policyActive.Load()
	k := 0
	for _, p := range w.vec {
		if p.next != stageRoute || p.flags&flagIPv6 != 0 {
			continue
		}
		ip := p.buf[p.l3:]
		w.dsts[k] = binary.BigEndian.Uint32(ip[16:])
		if policy {
			w.flows[k] = fib.Flow4{Src: binary.BigEndian.Uint32(ip[12:]), Dst: w.dsts[k], IIf: p.in, Mark: p.mark}
		}
		k++
	}
	w.route6()
	if k == 0 {
		return
	}
	if policy {
		w.r.policy.Lookup4Batch(w.flows[:k], w.hops[:k])
	} else {
		w.r.fib.Lookup4Batch(w.dsts[:k], w.hops[:k])
	}
	k = 0
	for _, p := range w.vec {
		if p.next != stageRoute || p.flags&flagIPv6 != 0 {
			continue
		}
		dst, h := w.dsts[k], w.hops[k]
		k++
		if h != nil && h.Multi != nil {
			h = h.Pick(w.flowHash(p))
		}
		if w.r.rpFilterAny && w.r.ports[p.in].rpFilter != 0 && !w.rpFilterPass(p) {
			p.Drop(DropRPFilter)
			continue
		}
		w.applyRoute(p, dst, h)
	}
}

// flowHash hashes the packet's 5-tuple for ECMP, or only its addresses
// when it is a fragment or not TCP, UDP or SCTP: every packet of a flow,
// including the fragments of a datagram, then takes the same path.
func (w *worker) flowHash(p *Packet) uint32 {
	ip := p.buf[p.l3:]
	src, dst := binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:])
	proto := ip[9]
	var sport, dport uint16
	fragmented := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 // MF or an offset
	l4 := p.l3 + int(ip[0]&0x0f)*4
	if !fragmented && (proto == 6 || proto == 17 || proto == 132) && l4+4 <= p.off+p.n {
		sport = binary.BigEndian.Uint16(p.buf[l4:])
		dport = binary.BigEndian.Uint16(p.buf[l4+2:])
	} else {
		proto = 0
	}
	return fib.FlowHash4(w.r.hashSeed, src, dst, proto, sport, dport)
}

func (w *worker) applyRoute(p *Packet, dst uint32, h *fib.NextHop) {
	if h == nil {
		w.icmpError(p, icmpDestUnreachable, icmpNetUnreachable, 0, DropNoRoute)
		return
	}
	switch h.Type {
	case fib.Unicast:
		p.hop, p.out = h, h.Dev
		p.nh = h.Gateway
		if p.nh == 0 {
			p.nh = dst
			if w.r.ports[h.Dev].isBroadcast(dst) && !w.directedBroadcast(p) {
				return
			}
		}
		p.next = stageForward
	case fib.Local:
		if p.flags&flagSourceRoute != 0 && w.sourceRoute(p, 0) {
			return
		}
		p.hop = h
		p.next = stageLocalIn
	case fib.Blackhole:
		p.Drop(DropBlackhole)
	case fib.Unreachable:
		// Net unreachable, as no route at all gives. (Linux answers an
		// explicit unreachable route with host unreachable; an operator
		// who declares a prefix unreachable means the network.)
		w.icmpError(p, icmpDestUnreachable, icmpNetUnreachable, 0, DropUnreachable)
	case fib.Prohibit:
		w.icmpError(p, icmpDestUnreachable, icmpAdminProhibited, 0, DropProhibit)
	default:
		p.Drop(DropNoRoute)
	}
}

// routeLocal routes a packet ferry itself built (echo reply, ICMP error)
// towards its destination and sends it to postrouting. It reports false if
// there is no unicast route back. Rules see it as Linux sees its own
// packets: from no input interface.
func (w *worker) routeLocal(p *Packet) bool {
	dst := binary.BigEndian.Uint32(p.buf[p.l3+16:])
	h := w.lookupOne(p, dst, -1)
	if h == nil || h.Type != fib.Unicast {
		return false
	}
	p.hop, p.out = h, h.Dev
	p.nh = h.Gateway
	if p.nh == 0 {
		p.nh = dst
	}
	p.flags |= flagLocalOrigin
	p.next = stageOutput
	return true
}

// lookupOne routes one packet to dst as if it came in on port iif (-1:
// ferry's own), through the rules when there are any, choosing the ECMP
// member for its flow.
func (w *worker) lookupOne(p *Packet, dst uint32, iif int) *fib.NextHop {
	var h *fib.NextHop
	if w.r.policyActive.Load() {
		h = w.r.policy.Lookup4(fib.Flow4{Src: binary.BigEndian.Uint32(p.buf[p.l3+12:]), Dst: dst, IIf: iif, Mark: p.mark})
	} else {
		h = w.r.fib.Lookup4(dst)
	}
	if h != nil && h.Multi != nil {
		h = h.Pick(w.flowHash(p))
	}
	return h
}
