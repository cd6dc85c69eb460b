package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

// local handles packets addressed to one of ferry's own addresses. Ferry
// has no sockets: it reassembles fragments (reassemble.go), answers pings,
// tells UDP senders (traceroute) that the port is unreachable, resets TCP
// connection attempts (tcpreset.go), and drops the rest with a reason.
// (The filter's input chain, when it exists, runs before this stage and
// may drop what would be answered here.)
func (w *worker) local() {
	w.reasmExpire()
	for _, p := range w.vec {
		if p.next != stageLocal {
			continue
		}
		w.ctr.local.Add(1)
		if p.flags&flagIPv6 != 0 {
			w.local6(p)
			continue
		}
		if binary.BigEndian.Uint16(p.buf[p.l3+6:])&0x3fff != 0 && !w.reassemble(p) {
			continue
		}
		ip := p.buf[p.l3 : p.off+p.n]
		ihl := int(ip[0]&0xf) * 4
		switch ip[9] {
		case protoICMP:
			w.echo(p, ip, ihl)
		case protoUDP:
			w.icmpError(p, icmpDestUnreachable, icmpPortUnreachable, 0, DropLocalPort)
		case protoTCP:
			w.tcpReset(p, ip, ihl, DropLocalTCPClosed)
		default:
			w.icmpError(p, icmpDestUnreachable, icmpProtoUnreachable, 0, DropLocalProtocol)
		}
	}
}

// echo turns an echo request into its reply in place (RFC 792): swap the
// addresses, change the type, fix both checksums, route it back.
func (w *worker) echo(p *Packet, ip []byte, ihl int) {
	icmp := ip[ihl:]
	if len(icmp) < 8 || icmp[0] != icmpEchoRequest {
		p.Drop(DropLocalICMPIgnored)
		return
	}
	if !p.needsCsum() && checksum.Checksum(icmp, 0) != 0xffff {
		p.Drop(DropICMPBadChecksum)
		return
	}
	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])
	ip[8] = 64
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:ihl], 0))
	icmp[0] = icmpEchoReply
	if p.needsCsum() {
		// The sender left its checksum to offload; the reply carries a
		// complete one, so it is valid whatever port it leaves by.
		clear(p.vnet())
		binary.BigEndian.PutUint16(icmp[2:], 0)
		binary.BigEndian.PutUint16(icmp[2:], ^checksum.Checksum(icmp, 0))
	} else {
		binary.BigEndian.PutUint16(icmp[2:], csumUpdate16(binary.BigEndian.Uint16(icmp[2:]), icmpEchoRequest<<8, icmpEchoReply<<8))
	}
	if !w.routeLocal(p) {
		p.Drop(DropICMPNoRoute)
	}
}
