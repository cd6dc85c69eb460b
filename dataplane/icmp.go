package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/iface"
)

// ICMPv4 types and codes ferry sends (RFC 792, RFC 1812).
const (
	icmpEchoReply         = 0
	icmpDestUnreachable   = 3
	icmpEchoRequest       = 8
	icmpRedirect          = 5
	icmpTimeExceeded      = 11
	icmpParamProblem      = 12
	icmpNetUnreachable    = 0
	icmpHostUnreachable   = 1
	icmpProtoUnreachable  = 2
	icmpPortUnreachable   = 3
	icmpFragNeeded        = 4
	icmpSourceRouteFailed = 5
	icmpAdminProhibited   = 13 // RFC 1812 5.2.7.1: communication administratively prohibited
	icmpTTLExceeded       = 0
	icmpReasmTimeout      = 1 // time exceeded: fragment reassembly
	icmpRedirectHost      = 1

	icmpHdrLen = 8
	// RFC 1812 4.3.2.3: an error should quote as much of the original as
	// fits without the error exceeding 576 bytes.
	icmpMaxError = 576
)

// isICMPError: the types RFC 1122 3.2.2 forbids answering with an error.
func isICMPError(t byte) bool {
	return t == 3 || t == 4 || t == 5 || t == 11 || t == 12
}

// icmpError counts p as dropped for reason and, unless the rules forbid it,
// turns it in place into the ICMP error (typ, code) to its source, routed
// and sent on to postrouting as ferry's own packet. info is the next-hop
// MTU for "fragmentation needed" and the pointer for "parameter problem".
//
// An error about a packet addressed to ferry comes from the address it was
// sent to (RFC 1122 3.2.2, RFC 1812 4.3.2.4), so traceroute to any of
// ferry's addresses ends on that address; any other error comes from the
// address of the interface the packet came in on, so that traceroute shows
// the hop the sender knows.
func (w *worker) icmpError(p *Packet, typ, code byte, info int, reason Drop) {
	if p.in >= 0 && reason != DropNone {
		w.ctr.ports[p.in].drops[reason].Add(1)
	}
	ip := p.buf[p.l3 : p.off+p.n]
	ihl := int(ip[0]&0xf) * 4
	// Never an error about an error, a non-first fragment, or one of
	// ferry's own packets (RFC 1122 3.2.2, RFC 1812 4.3.2.7). Broadcast and
	// multicast never reach here: input drops them.
	if p.flags&flagLocalOrigin != 0 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 ||
		(ip[9] == protoICMP && len(ip) > ihl && isICMPError(ip[ihl])) {
		p.Drop(DropICMPSuppressed)
		return
	}
	src := binary.BigEndian.Uint32(ip[12:])
	// Path MTU discovery needs every "fragmentation needed"; redirects
	// have their own limiter (redirect.go).
	limited := !(typ == icmpDestUnreachable && code == icmpFragNeeded) && typ != icmpRedirect
	if limited && !w.rl.allow(src, w.now) {
		p.Drop(DropICMPRateLimited)
		return
	}
	var from uint32
	if dst := binary.BigEndian.Uint32(ip[16:]); isOneOf(dst, w.r.ours) {
		from = dst
	} else if p.in >= 0 {
		from = w.r.ports[p.in].sourceFor(src)
	}

	quote := len(ip)
	if max := icmpMaxError - ipv4MinHdr - icmpHdrLen; quote > max {
		quote = max
	}
	l3 := p.l3 - ipv4MinHdr - icmpHdrLen
	off := l3 - ethHdrLen
	if off < iface.VnetHdrLen {
		p.Drop(DropICMPSuppressed)
		return
	}
	total := ipv4MinHdr + icmpHdrLen + quote
	p.setFrame(off, ethHdrLen+total)
	binary.BigEndian.PutUint16(p.buf[off+12:], etherTypeIPv4)

	h := p.buf[l3 : l3+ipv4MinHdr]
	h[0], h[1] = 0x45, 0xc0 // precedence: internetwork control, as Linux sends errors
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	w.ipID++
	binary.BigEndian.PutUint16(h[4:], w.ipID)
	h[6], h[7], h[8], h[9] = 0, 0, 64, protoICMP
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint32(h[12:], from)
	binary.BigEndian.PutUint32(h[16:], src)

	m := p.buf[l3+ipv4MinHdr : l3+total]
	m[0], m[1], m[2], m[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(m[4:], 0)
	switch {
	case typ == icmpDestUnreachable && code == icmpFragNeeded:
		binary.BigEndian.PutUint16(m[6:], uint16(info)) // RFC 1191 section 4
	case typ == icmpParamProblem:
		m[4] = byte(info) // RFC 792: the octet where the error was found
	case typ == icmpRedirect:
		binary.BigEndian.PutUint32(m[4:], uint32(info)) // the gateway to use
	}
	binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))

	if !w.routeLocal(p) {
		p.Drop(DropICMPNoRoute)
		return
	}
	if from == 0 {
		// No address on the ingress port: use the egress port's, as Linux
		// falls back to the route's preferred source.
		from = w.r.ports[p.out].sourceFor(src)
		if from == 0 {
			p.Drop(DropICMPNoRoute)
			return
		}
		binary.BigEndian.PutUint32(h[12:], from)
	}
	binary.BigEndian.PutUint16(h[10:], ^checksum.Checksum(h, 0))
}
