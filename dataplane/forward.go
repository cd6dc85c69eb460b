package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/filter"
	"github.com/ferry-router/ferry/iface"
)

// forward applies what RFC 1812 asks of a router before a packet may leave
// (TTL, then egress MTU, as Linux's ip_forward orders them), decrements the
// TTL, and runs the forward hook chain.
func (w *worker) forward() {
	for _, p := range w.vec {
		if p.next != stageForward {
			continue
		}
		if p.flags&flagIPv6 != 0 {
			w.forward6(p)
			continue
		}
		ip := p.buf[p.l3 : p.off+p.n]
		if ip[8] <= 1 {
			w.icmpError(p, icmpTimeExceeded, icmpTTLExceeded, 0, DropTTLExceeded)
			continue
		}
		if p.out == p.in {
			w.redirect(p) // before the MTU check and TTL decrement, as Linux
		}
		if !w.checkMTU(p, ip) {
			continue
		}
		ip[8]--
		// The TTL shares a 16-bit word with the protocol (RFC 1624 section 4).
		old := uint16(ip[8]+1)<<8 | uint16(ip[9])
		binary.BigEndian.PutUint16(ip[10:], csumUpdate16(binary.BigEndian.Uint16(ip[10:]), old, old-0x100))
		if p.flags&flagOptions != 0 {
			w.forwardOptions(p, header.IPv4(ip))
		}
		w.mssClamp(p)
	}
	w.filterHook(stageForward, filter.HookForward)
	w.hook(stageForward, w.r.hooks.Forward)
}

// checkMTU answers a packet that is too big for the egress port and may not
// be fragmented with "fragmentation needed" (RFC 1191). A GSO frame is
// judged by the segments the kernel will cut it into, not by its own size.
// Packets that may be fragmented pass; the fragment stage splits them.
func (w *worker) checkMTU(p *Packet, ip []byte) bool {
	mtu := w.r.ports[p.out].mtu
	df := ip[6]&0x40 != 0
	if gt := p.gsoType() &^ iface.VnetGSOECN; gt != iface.VnetGSONone {
		if seg := segmentLen(ip, gt, p.gsoSize()); seg > mtu {
			if df || gt == iface.VnetGSOTCPv4 {
				w.icmpError(p, icmpDestUnreachable, icmpFragNeeded, mtu, DropFragNeeded)
			} else {
				p.Drop(DropGSOTooBig)
			}
			return false
		}
		return true
	}
	if len(ip) > mtu && df {
		w.icmpError(p, icmpDestUnreachable, icmpFragNeeded, mtu, DropFragNeeded)
		return false
	}
	return true
}

// segmentLen is the IP length of the largest segment of a GSO frame:
// network and transport headers plus gso_size bytes of payload.
func segmentLen(ip []byte, gsoType uint8, gsoSize int) int {
	ihl := int(ip[0]&0xf) * 4
	l4 := 8 // UDP
	if gsoType == iface.VnetGSOTCPv4 && len(ip) >= ihl+13 {
		l4 = int(ip[ihl+12]>>4) * 4
	}
	return ihl + l4 + gsoSize
}
