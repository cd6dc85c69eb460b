package dataplane

import (
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/iface"
)

// forward6 is the forward stage for one IPv6 packet: hop limit (RFC 8200
// 3: no header checksum to fix), scope (a link-local source never leaves
// its link: RFC 4291 2.5.6), then the egress MTU. IPv6 routers never
// fragment (RFC 8200 5): a packet too big is answered with Packet Too Big
// carrying the egress MTU, and a GSO frame is judged by the segments the
// kernel will cut it into.
func (w *worker) forward6(p *Packet) {
	ip := header.IPv6(p.buf[p.l3 : p.off+p.n])
	hl := ip.HopLimit()
	if hl <= 1 {
		w.icmp6Error(p, icmp6TimeExceeded, icmp6HopLimitExceeded, 0, DropHopLimitExceeded)
		return
	}
	if isLinkLocal6(ip.SourceAddressSlice()) {
		w.icmp6Error(p, icmp6DestUnreachable, icmp6BeyondScope, 0, DropIP6BeyondScope)
		return
	}
	mtu := w.r.ports[p.out].mtu
	size := len(ip)
	if gt := p.gsoType() &^ iface.VnetGSOECN; gt != iface.VnetGSONone {
		size = segmentLen6(p, gt)
	}
	if size > mtu {
		w.icmp6Error(p, icmp6PacketTooBig, 0, uint32(mtu), DropPacketTooBig)
		return
	}
	ip.SetHopLimit(hl - 1)
	w.mssClamp(p)
}

// segmentLen6 is the IPv6 length of the largest segment of a GSO frame:
// the headers up to the upper layer's, its header, and gso_size bytes.
func segmentLen6(p *Packet, gsoType uint8) int {
	l4 := 8 // UDP
	if gsoType == iface.VnetGSOTCPv6 && p.l4+13 <= p.off+p.n {
		l4 = int(p.buf[p.l4+12]>>4) * 4
	}
	return p.l4 - p.l3 + l4 + p.gsoSize()
}
