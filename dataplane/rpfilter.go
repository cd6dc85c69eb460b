package dataplane

import (
	"encoding/binary"

	"github.com/ferry-router/ferry/fib"
)

// Reverse-path filtering (RFC 3704), per ingress port as Linux's
// rp_filter: 0 off, 1 strict (the route back to the source must leave by
// the port the packet came in on), 2 loose (there must be some unicast
// route back). The route back is looked up as Linux's fib_validate_source
// does: through the policy rules, as a packet of ferry's own (no input
// port) from the destination to the source; for an ECMP route any member
// on the ingress port will do. A source with no route back, or whose
// route is local, blackhole, unreachable or prohibit, fails both modes.
// Failures are dropped silently, counted as rp_filter.
//
// route calls this only for ports with rp_filter set, so ports without it
// pay one flag test per packet.

// rpFilterPass reports whether p's source passes its ingress port's check.
func (w *worker) rpFilterPass(p *Packet) bool {
	ip := p.buf[p.l3:]
	src := binary.BigEndian.Uint32(ip[12:])
	var h *fib.NextHop
	if w.r.policyActive.Load() {
		h = w.r.policy.Lookup4(fib.Flow4{Src: binary.BigEndian.Uint32(ip[16:]), Dst: src, IIf: -1})
	} else {
		h = w.r.fib.Lookup4(src)
	}
	return rpCheck(h, p.in, w.r.ports[p.in].rpFilter)
}

// rpCheck is the decision for a reverse route h, ingress port in and mode.
func rpCheck(h *fib.NextHop, in int, mode uint8) bool {
	if h == nil || h.Type != fib.Unicast {
		return false
	}
	if mode != 1 {
		return true
	}
	if h.Multi != nil {
		for i := range h.Multi.Hops {
			if h.Multi.Hops[i].Dev == in {
				return true
			}
		}
		return false
	}
	return h.Dev == in
}
