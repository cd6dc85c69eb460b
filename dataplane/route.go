package dataplane

import (
	"encoding/binary"

	"github.com/ferry-router/ferry/fib"
)

// route looks up every live packet's destination in the FIB with one batch
// call, then sends each to local delivery, on to forward, or turns it into
// the ICMP error its route asks for.
func (w *worker) route() {
	k := 0
	for _, p := range w.vec {
		if p.next == stageRoute {
			w.dsts[k] = binary.BigEndian.Uint32(p.buf[p.l3+16:])
			k++
		}
	}
	if k == 0 {
		return
	}
	w.r.fib.Lookup4Batch(w.dsts[:k], w.hops[:k])
	k = 0
	for _, p := range w.vec {
		if p.next != stageRoute {
			continue
		}
		dst, h := w.dsts[k], w.hops[k]
		k++
		w.applyRoute(p, dst, h)
	}
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
		}
		p.next = stageForward
	case fib.Local:
		p.hop = h
		p.next = stageLocal
	case fib.Blackhole:
		p.Drop(DropBlackhole)
	case fib.Unreachable:
		w.icmpError(p, icmpDestUnreachable, icmpHostUnreachable, 0, DropUnreachable)
	case fib.Prohibit:
		w.icmpError(p, icmpDestUnreachable, icmpAdminProhibited, 0, DropProhibit)
	default:
		p.Drop(DropNoRoute)
	}
}

// routeLocal routes a packet ferry itself built (echo reply, ICMP error)
// towards its destination and sends it to postrouting. It reports false if
// there is no unicast route back.
func (w *worker) routeLocal(p *Packet) bool {
	dst := binary.BigEndian.Uint32(p.buf[p.l3+16:])
	h := w.r.fib.Lookup4(dst)
	if h == nil || h.Type != fib.Unicast {
		return false
	}
	p.hop, p.out = h, h.Dev
	p.nh = h.Gateway
	if p.nh == 0 {
		p.nh = dst
	}
	p.flags |= flagLocalOrigin
	p.next = stagePostrouting
	return true
}
