package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/iface"
)

// ICMPv6 types and codes ferry sends or reads (RFC 4443, RFC 4861).
const (
	icmp6DestUnreachable = byte(header.ICMPv6DstUnreachable)
	icmp6PacketTooBig    = byte(header.ICMPv6PacketTooBig)
	icmp6TimeExceeded    = byte(header.ICMPv6TimeExceeded)
	icmp6ParamProblem    = byte(header.ICMPv6ParamProblem)
	icmp6EchoRequest     = byte(header.ICMPv6EchoRequest)
	icmp6EchoReply       = byte(header.ICMPv6EchoReply)
	icmp6RouterSolicit   = byte(header.ICMPv6RouterSolicit)
	icmp6RouterAdvert    = byte(header.ICMPv6RouterAdvert)
	icmp6NeighborSolicit = byte(header.ICMPv6NeighborSolicit)
	icmp6NeighborAdvert  = byte(header.ICMPv6NeighborAdvert)
	icmp6Redirect        = byte(header.ICMPv6RedirectMsg)

	icmp6NoRoute          = byte(header.ICMPv6NetworkUnreachable)
	icmp6AdminProhibited  = byte(header.ICMPv6Prohibited)
	icmp6BeyondScope      = byte(header.ICMPv6BeyondScope)
	icmp6AddrUnreachable  = byte(header.ICMPv6AddressUnreachable)
	icmp6PortUnreachable  = byte(header.ICMPv6PortUnreachable)
	icmp6HopLimitExceeded = byte(header.ICMPv6HopLimitExceeded)
	icmp6ErroneousHeader  = byte(header.ICMPv6ErroneousHeader)
	icmp6UnknownHeader    = byte(header.ICMPv6UnknownHeader)
	icmp6UnknownOption    = byte(header.ICMPv6UnknownOption)

	icmp6HdrLen = header.ICMPv6MinimumSize
	// RFC 4443 2.4 (c): an error quotes as much of the offending packet as
	// fits without exceeding the minimum IPv6 MTU.
	icmp6MaxError = header.IPv6MinimumMTU
)

// icmp6Checksum computes an ICMPv6 message's checksum with the pseudo-header
// of its IPv6 packet (RFC 4443 2.3); the checksum field itself is skipped.
func icmp6Checksum(ip header.IPv6, m header.ICMPv6) uint16 {
	return header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: m,
		Src:    tcpip.AddrFrom16Slice(ip.SourceAddressSlice()),
		Dst:    tcpip.AddrFrom16Slice(ip.DestinationAddressSlice()),
	})
}

// icmp6ChecksumOK verifies a received ICMPv6 message.
func icmp6ChecksumOK(ip header.IPv6, m header.ICMPv6) bool {
	return icmp6Checksum(ip, m) == m.Checksum()
}

// rlKey6 folds an IPv6 address into the rate limiter's 32-bit key. Two
// addresses that fold alike share a bucket, which errs only towards fewer
// errors to them.
func rlKey6(a []byte) uint32 {
	var k uint32
	for i := 0; i < 16; i += 4 {
		k = k*0x9e3779b1 ^ binary.BigEndian.Uint32(a[i:])
	}
	return k
}

// icmp6Error counts p as dropped for reason and, unless RFC 4443 2.4
// forbids it, turns it in place into the ICMPv6 error (typ, code) to its
// source, quoting as much of it as fits in 1280 bytes, routed and sent on
// to postrouting as ferry's own packet. param is the MTU of a packet too
// big or the pointer of a parameter problem.
//
// The error is sourced from ferry's address on the ingress port (global,
// or link-local for a link-local sender), so traceroute shows the hop the
// sender knows.
func (w *worker) icmp6Error(p *Packet, typ, code byte, param uint32, reason Drop) {
	if p.in >= 0 {
		w.ctr.ports[p.in].drops[reason].Add(1)
	}
	ip := header.IPv6(p.buf[p.l3 : p.off+p.n])
	src := ip.SourceAddressSlice()
	// RFC 4443 2.4 (e): never about an ICMPv6 error or redirect, a packet
	// from an address that does not name one node, or one sent to
	// multicast (input drops those before they get here) — nor about one
	// of ferry's own packets.
	if p.flags&flagLocalOrigin != 0 || src[0] == 0xff || isUnspecified6(src) || p.dstMAC()[0]&1 != 0 ||
		(p.proto == nhICMPv6 && p.l4 < p.off+p.n && (p.buf[p.l4] < 128 || p.buf[p.l4] == icmp6Redirect)) {
		p.Drop(DropICMPSuppressed)
		return
	}
	// Packet too big is exempt from the rate limit, as in Linux: path MTU
	// discovery must not stall behind a flood of other errors.
	if typ != icmp6PacketTooBig && !w.rl.allow(rlKey6(src), w.now) {
		p.Drop(DropICMPRateLimited)
		return
	}
	var from [16]byte
	haveFrom := false
	if p.in >= 0 {
		from, haveFrom = w.r.ports[p.in].v6.source6(src)
	}
	dst := addr6Of(src)

	quote := min(len(ip), icmp6MaxError-ipv6HdrLen-icmp6HdrLen)
	l3 := p.l3 - ipv6HdrLen - icmp6HdrLen
	off := l3 - ethHdrLen
	if off < iface.VnetHdrLen {
		p.Drop(DropICMPSuppressed)
		return
	}
	total := ipv6HdrLen + icmp6HdrLen + quote
	p.setFrame(off, ethHdrLen+total)
	binary.BigEndian.PutUint16(p.buf[off+12:], etherTypeIPv6)
	p.flags |= flagIPv6
	p.proto, p.l4 = nhICMPv6, l3+ipv6HdrLen

	h := header.IPv6(p.buf[l3 : l3+total])
	h.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icmp6HdrLen + quote),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          64,
	})
	copy(h.DestinationAddressSlice(), dst[:])
	copy(h.SourceAddressSlice(), from[:])
	m := header.ICMPv6(h[ipv6HdrLen:])
	m.SetType(header.ICMPv6Type(typ))
	m.SetCode(header.ICMPv6Code(code))
	m.SetTypeSpecific(param)

	if !w.routeLocal6(p) {
		p.Drop(DropICMPNoRoute)
		return
	}
	if !haveFrom {
		// No usable address on the ingress port: use the egress port's,
		// as Linux falls back to the route's preferred source.
		if from, haveFrom = w.r.ports[p.out].v6.source6(dst[:]); !haveFrom {
			p.Drop(DropICMPNoRoute)
			return
		}
		copy(h.SourceAddressSlice(), from[:])
	}
	m.SetChecksum(icmp6Checksum(h, m))
}
