package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/iface"
)

// input is the validation gate: after it, every live packet is either ARP
// (next: arp), Neighbor Discovery (next: nd), or an IPv4 or IPv6 packet
// whose header fields can be read unchecked (next: prerouting), trimmed to
// its total length. IPv6 is checked in input6.go.
//
// A header with options is checked here too (options.go): malformed
// options are answered with a parameter problem, source routes dropped
// unless the port accepts them. Packets without options pay one compare.
func (w *worker) input() {
	for _, p := range w.vec {
		if p.next != stageInput {
			continue
		}
		if p.n < ethHdrLen {
			p.Drop(DropFrameTruncated)
			continue
		}
		port := w.r.ports[p.in]
		dst := p.dstMAC()
		// A promiscuous port also sees unicast meant for other hosts on the
		// segment; forwarding those would duplicate their traffic.
		if dst[0]&1 == 0 && [6]byte(dst) != port.mac {
			p.Drop(DropNotForUs)
			continue
		}
		switch p.etherType() {
		case etherTypeIPv4:
			w.inputIPv4(p, dst[0]&1 != 0)
		case etherTypeARP:
			p.next = stageARP
		case etherTypeIPv6:
			w.inputIPv6(p, dst[0]&1 != 0)
		default:
			p.Drop(DropUnknownEtherType)
		}
	}
}

// inputIPv4 checks the header as RFC 1812 section 5.2.2 asks of a router.
func (w *worker) inputIPv4(p *Packet, l2multicast bool) {
	ip := p.buf[p.l3 : p.off+p.n]
	if len(ip) < ipv4MinHdr {
		p.Drop(DropIPTruncated)
		return
	}
	if ip[0]>>4 != 4 {
		p.Drop(DropIPBadVersion)
		return
	}
	ihl := int(ip[0]&0xf) * 4
	if ihl < ipv4MinHdr || ihl > len(ip) {
		p.Drop(DropIPBadIHL)
		return
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total < ihl {
		p.Drop(DropIPBadTotalLength)
		return
	}
	if total > len(ip) {
		p.Drop(DropIPTruncated)
		return
	}
	if checksum.Checksum(ip[:ihl], 0) != 0xffff {
		p.Drop(DropIPBadChecksum)
		return
	}
	// Ethernet pads short frames to 60 bytes; the padding is not ours to forward.
	p.n = p.l3 - p.off + total
	if p.gsoType() != iface.VnetGSONone && p.gsoSize() == 0 {
		p.Drop(DropIPBadTotalLength)
		return
	}

	src := binary.BigEndian.Uint32(ip[12:])
	dst := binary.BigEndian.Uint32(ip[16:])
	if martianSource(src) {
		p.Drop(DropIPMartianSource)
		return
	}
	if dst>>24 == 0 || dst>>24 == 127 {
		p.Drop(DropIPMartianDest)
		return
	}
	if l2multicast || dst>>28 == 0xe || dst == 0xffffffff || w.r.ports[p.in].isBroadcast(dst) {
		// Link-layer multicast or broadcast, IP multicast, limited or
		// directed broadcast on the ingress network: ferry routes none of
		// them (RFC 1812 5.3.5 lets directed broadcast forwarding be off).
		p.Drop(DropBroadcast)
		return
	}
	if ihl > ipv4MinHdr && !w.inputOptions(p, header.IPv4(ip[:ihl])) {
		return
	}
	p.next = stageConntrack
}

// martianSource: RFC 1812 5.3.7 addresses a router must not forward from.
func martianSource(src uint32) bool {
	a := src >> 24
	return a == 0 || a == 127 || src>>28 >= 0xe
}
