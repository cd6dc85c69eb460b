package dataplane

import (
	"encoding/binary"
	"time"
)

// ICMP redirects (RFC 1812 5.2.7.2, RFC 792). When a packet leaves by the
// port it came in on and its sender is on that port's network, the sender
// could have reached the next hop directly: ferry tells it so with a host
// redirect and forwards the packet anyway. Never for a source-routed
// packet, nor when the port's send_redirects is off.
//
// A redirect is a packet of its own, built in a spare buffer, so the
// original goes on untouched. How often a host is told follows Linux's
// ip_rt_send_redirect: after the first redirect the next waits
// redirect_load (20 ms) doubled for each one sent, the ninth is the last,
// and the count starts again after redirect_silence (about 20 s) in which
// the host sent nothing that deserved one.

const (
	redirectLoad    = 20 * time.Millisecond // ip_rt_redirect_load: HZ/50
	redirectNumber  = 9                     // ip_rt_redirect_number
	redirectSilence = redirectLoad << (redirectNumber + 1)
)

// redirectLimiter holds, per host, what Linux keeps in its inet_peer. A
// direct-mapped table as rateLimiter's: a collision forgets the older
// host, which can only make ferry send a redirect sooner.
type redirectLimiter struct {
	slots [256]rdSlot
}

type rdSlot struct {
	ip   uint32
	n    int // redirects sent since the last silence
	last time.Time
	used bool
}

// allow reports whether a redirect to host may be sent now.
func (r *redirectLimiter) allow(host uint32, now time.Time) bool {
	s := &r.slots[(host*2654435761)>>24]
	if !s.used || s.ip != host {
		*s = rdSlot{ip: host, used: true, last: now}
	}
	if now.Sub(s.last) > redirectSilence {
		s.n = 0
	}
	if s.n >= redirectNumber {
		s.last = now // keep quiet while the host keeps at it
		return false
	}
	if s.n == 0 || now.Sub(s.last) > redirectLoad<<s.n {
		s.n++
		s.last = now
		return true
	}
	return false
}

// mayRedirect is RFC 1812's condition for packet p, already routed back
// out of its ingress port: the sender and the next hop are on the same
// network of that port.
func (w *worker) mayRedirect(p *Packet) bool {
	pt := w.r.ports[p.in]
	if !pt.sendRedirects || p.flags&(flagSourceRoute|flagLocalOrigin) != 0 ||
		binary.BigEndian.Uint16(p.buf[p.l3+6:])&0x1fff != 0 { // ICMP never speaks of later fragments
		return false
	}
	src := binary.BigEndian.Uint32(p.buf[p.l3+12:])
	if src == p.nh {
		return false
	}
	for _, a := range pt.addrs {
		mask := ^uint32(0) << (32 - a.Bits())
		if a.Bits() == 0 {
			mask = 0
		}
		if net := ip4(a.Addr()) & mask; src&mask == net && p.nh&mask == net {
			return true
		}
	}
	return false
}

// redirect sends the sender of p a host redirect to p's next hop, in a
// spare buffer appended to the batch; p itself is left as it was.
func (w *worker) redirect(p *Packet) {
	if !w.mayRedirect(p) {
		return
	}
	src := binary.BigEndian.Uint32(p.buf[p.l3+12:])
	if !w.rd.allow(src, w.now) {
		return
	}
	s := w.takeSpare()
	if s == nil {
		return
	}
	quote := min(p.off+p.n-p.l3, icmpMaxError-ipv4MinHdr-icmpHdrLen)
	copy(s.buf[Headroom:], p.buf[p.off:p.l3+quote])
	s.setFrame(Headroom, ethHdrLen+quote)
	s.in = p.in
	s.next = stageForward // any live stage: icmpError moves it on
	w.vec = append(w.vec, s)
	w.icmpError(s, icmpRedirect, icmpRedirectHost, int(p.nh), DropNone)
}
