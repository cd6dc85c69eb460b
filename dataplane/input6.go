package dataplane

import (
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/iface"
)

// IPv6 next-header values ferry looks at (IANA "IPv6 Extension Header
// Types" and "Protocol Numbers").
const (
	nhHopByHop  = 0
	nhTCP       = 6
	nhUDP       = 17
	nhRouting   = 43
	nhFragment  = 44
	nhAH        = 51
	nhICMPv6    = 58
	nhNone      = 59
	nhDestOpts  = 60
	nhMobility  = 135
	nhHIP       = 139
	nhShim6     = 140
	ipv6HdrLen  = header.IPv6FixedHeaderSize
	offV6Src    = 8
	offV6Dst    = 24
	maxExtHdrs6 = 8 // RFC 8504 5.3 lets a node bound the chain; 8 is generous
)

// inputIPv6 checks an IPv6 header (RFC 8200 section 3), walks its
// extension headers to the upper-layer protocol and sends the packet to
// nd (Neighbor Discovery), prerouting (everything routable) or drops it.
// After it, p.l4 and p.proto name the upper layer and p.n ends at the
// payload length.
func (w *worker) inputIPv6(p *Packet, l2multicast bool) {
	ip := header.IPv6(p.buf[p.l3 : p.off+p.n])
	if len(ip) < ipv6HdrLen {
		p.Drop(DropIP6Truncated)
		return
	}
	if header.IPVersion(ip) != header.IPv6Version {
		p.Drop(DropIP6BadVersion)
		return
	}
	plen := int(ip.PayloadLength())
	if plen == 0 && ip.NextHeader() != nhNone {
		// A jumbogram (RFC 2675) has payload length 0; ferry's links
		// carry none, so this is malformed or unsupported either way.
		p.Drop(DropIP6BadLength)
		return
	}
	if ipv6HdrLen+plen > len(ip) {
		p.Drop(DropIP6Truncated)
		return
	}
	// Ethernet pads short frames; the padding is not ours to forward.
	p.n = p.l3 - p.off + ipv6HdrLen + plen
	ip = ip[:ipv6HdrLen+plen]
	if p.gsoType() != iface.VnetGSONone && p.gsoSize() == 0 {
		p.Drop(DropIP6BadLength)
		return
	}
	p.flags |= flagIPv6
	src, dst := ip.SourceAddressSlice(), ip.DestinationAddressSlice()
	if src[0] == 0xff || isLoopback6(src) || isV4Mapped6(src) {
		p.Drop(DropIP6MartianSource)
		return
	}
	if isUnspecified6(dst) || isLoopback6(dst) || isV4Mapped6(dst) {
		p.Drop(DropIP6MartianDest)
		return
	}
	// Until the chain is walked, an error about the packet must not take
	// the buffer's previous packet for its upper layer.
	p.proto, p.l4 = nhNone, p.l3+ipv6HdrLen
	proto, l4, bad := walkExt6(ip)
	if bad != 0 {
		if bad > 0 {
			// RFC 8200 4.0: an unrecognised next header (a hop-by-hop
			// header anywhere but first) is answered with parameter
			// problem code 1 pointing at the field that named it.
			w.icmp6Error(p, icmp6ParamProblem, icmp6UnknownHeader, uint32(bad), DropIP6BadExtHeaders)
			return
		}
		p.Drop(DropIP6BadExtHeaders)
		return
	}
	p.proto, p.l4 = proto, p.l3+l4
	if proto == nhICMPv6 && l4 < len(ip) {
		if t := ip[l4]; t >= icmp6RouterSolicit && t <= icmp6Redirect {
			p.next = stageND
			return
		}
	}
	if dst[0] == 0xff || l2multicast {
		// Multicast (of any scope: ferry is no multicast router) and
		// unicast sent to a multicast MAC are not forwarded.
		p.Drop(DropIP6Multicast)
		return
	}
	if isUnspecified6(src) {
		// Only duplicate address detection sends from ::, and only to
		// multicast (RFC 4862 5.4.2).
		p.Drop(DropIP6MartianSource)
		return
	}
	p.next = stageConntrack
}

// walkExt6 follows ip's extension headers to the upper-layer protocol and
// returns it with its offset. A fragment header stops the walk with proto
// nhFragment: the upper layer of a non-first fragment is not there, and
// ferry treats every fragment alike (addresses-only ECMP hash, no local
// delivery). bad is -1 for a chain that runs past the packet, is longer
// than maxExtHdrs6 headers or has a malformed hop-by-hop option, and the
// offset of the offending next-header field for a misplaced hop-by-hop
// header (for the parameter problem's pointer).
func walkExt6(ip header.IPv6) (proto uint8, off int, bad int) {
	proto, off = ip.NextHeader(), ipv6HdrLen
	nhField := header.IPv6NextHeaderOffset
	for i := 0; ; i++ {
		var n int
		switch proto {
		case nhHopByHop:
			if i != 0 {
				return 0, 0, nhField
			}
			fallthrough
		case nhRouting, nhDestOpts, nhMobility, nhHIP, nhShim6:
			if off+8 > len(ip) {
				return 0, 0, -1
			}
			n = (int(ip[off+1]) + 1) * 8
		case nhAH:
			if off+8 > len(ip) {
				return 0, 0, -1
			}
			n = (int(ip[off+1]) + 2) * 4 // RFC 4302 2.2: in 4-byte units, minus 2
		case nhFragment:
			if off+8 > len(ip) {
				return 0, 0, -1
			}
			return nhFragment, off + 8, 0
		default:
			return proto, off, 0
		}
		if i >= maxExtHdrs6 || off+n > len(ip) {
			return 0, 0, -1
		}
		if proto == nhHopByHop && !optionsWellFormed(ip[off+2:off+n]) {
			return 0, 0, -1
		}
		nhField = off
		proto, off = ip[off], off+n
	}
}

// optionsWellFormed checks that a hop-by-hop or destination options area
// is a sequence of TLVs that fills it exactly (RFC 8200 4.2).
func optionsWellFormed(o []byte) bool {
	for i := 0; i < len(o); {
		if o[i] == 0 { // Pad1
			i++
			continue
		}
		if i+2 > len(o) || i+2+int(o[i+1]) > len(o) {
			return false
		}
		i += 2 + int(o[i+1])
	}
	return true
}

// unknownOption6 applies RFC 8200 4.2's action bits to the hop-by-hop
// options of a packet ferry receives itself: it returns the offset (from
// the IPv6 header) of the first option ferry does not know whose type says
// "discard", and whether a parameter problem (code 2) must be sent for it.
// Known options: Pad1, PadN, Router Alert (RFC 2711).
func unknownOption6(ip []byte) (off int, report, discard bool) {
	if ip[header.IPv6NextHeaderOffset] != nhHopByHop {
		return 0, false, false
	}
	n := (int(ip[ipv6HdrLen+1]) + 1) * 8
	o := ip[ipv6HdrLen+2 : ipv6HdrLen+n]
	for i := 0; i < len(o); {
		t := o[i]
		if t == 0 {
			i++
			continue
		}
		switch t {
		case 1, 5:
		default:
			switch t >> 6 {
			case 1:
				return ipv6HdrLen + 2 + i, false, true
			case 2, 3:
				// 3 also says "only if the destination was not multicast";
				// multicast never reaches local delivery.
				return ipv6HdrLen + 2 + i, true, true
			}
		}
		i += 2 + int(o[i+1])
	}
	return 0, false, false
}

func isUnspecified6(a []byte) bool { return [16]byte(a[:16]) == [16]byte{} }

func isLoopback6(a []byte) bool {
	return string(a[:15]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" && a[15] == 1
}

func isV4Mapped6(a []byte) bool {
	return string(a[:12]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff"
}

func isLinkLocal6(a []byte) bool { return a[0] == 0xfe && a[1]&0xc0 == 0x80 }

// addr6Of reads a 16-byte address field.
func addr6Of(b []byte) [16]byte { return [16]byte(b[:16]) }
