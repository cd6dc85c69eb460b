package conntrack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// IP protocol numbers the tracker knows by name. Every other protocol is
// tracked by the generic tracker on its addresses (and ports, when the
// caller fills them).
const (
	ProtoICMP    = 1
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoICMPv6  = 58
	ProtoUDPLite = 136
)

// Tuple is one direction of a connection as it appears on the wire.
// Addresses are 16 bytes (IPv4 as v4-mapped ::ffff:a.b.c.d) so IPv6 needs
// no second table, and the struct holds no pointer: a million entries are
// invisible to the garbage collector's marking.
//
// ICMP and ICMPv6 are keyed as Linux keys them: SrcPort holds the query
// identifier (0 for other messages) and DstPort the type in its high byte
// and the code in its low byte; use SetICMP. Inverting an echo request
// gives the echo reply's tuple, so both directions meet in one entry.
type Tuple struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Proto            uint8
	V6               bool
}

// V4 is addr as the v4-mapped 16 bytes Tuple uses.
func V4(a [4]byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]}
}

// SetV4 fills the tuple for an IPv4 packet.
func (t *Tuple) SetV4(src, dst [4]byte, sport, dport uint16, proto uint8) {
	*t = Tuple{Src: V4(src), Dst: V4(dst), SrcPort: sport, DstPort: dport, Proto: proto}
}

// SetICMP puts an ICMP message's identifier, type and code where the
// tracker keys them.
func (t *Tuple) SetICMP(typ, code uint8, id uint16) {
	t.SrcPort = id
	t.DstPort = uint16(typ)<<8 | uint16(code)
}

// ICMPType and ICMPCode read back what SetICMP stored.
func (t *Tuple) ICMPType() uint8 { return uint8(t.DstPort >> 8) }
func (t *Tuple) ICMPCode() uint8 { return uint8(t.DstPort) }

// SrcAddr and DstAddr are the addresses as netip values, for display: an
// IPv4 tuple gives an IPv4 address, not the mapped form.
func (t *Tuple) SrcAddr() netip.Addr { return t.addr(t.Src) }
func (t *Tuple) DstAddr() netip.Addr { return t.addr(t.Dst) }

func (t *Tuple) addr(a [16]byte) netip.Addr {
	x := netip.AddrFrom16(a)
	if !t.V6 {
		return x.Unmap()
	}
	return x
}

func (t *Tuple) isICMP() bool { return t.Proto == ProtoICMP || t.Proto == ProtoICMPv6 }

// Invert returns the tuple a reply to t carries. It fails for an ICMP
// message that has no reply (only queries are inverted).
func (t *Tuple) Invert() (Tuple, bool) {
	r := Tuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort, Proto: t.Proto, V6: t.V6}
	if t.isICMP() {
		rt, ok := icmpReplyType(t.Proto, t.ICMPType())
		if !ok {
			return Tuple{}, false
		}
		r.SrcPort = t.SrcPort
		r.DstPort = uint16(rt)<<8 | uint16(t.ICMPCode())
	}
	return r, true
}

// equal compares two tuples a word at a time (the == operator calls
// memequal for a struct of this size).
func equal(a, b *Tuple) bool {
	le := binary.LittleEndian
	return le.Uint64(a.Src[8:]) == le.Uint64(b.Src[8:]) &&
		a.SrcPort == b.SrcPort && a.DstPort == b.DstPort &&
		le.Uint64(a.Dst[8:]) == le.Uint64(b.Dst[8:]) &&
		le.Uint64(a.Src[:8]) == le.Uint64(b.Src[:8]) &&
		le.Uint64(a.Dst[:8]) == le.Uint64(b.Dst[:8]) &&
		a.Proto == b.Proto && a.V6 == b.V6
}

// hash mixes the tuple with the table's random seed, so a sender who knows
// the function cannot pick tuples that all land in one chain. Two
// multiply-folds of 128 bits each (as wyhash does) keep it to a few ns.
func hash(t *Tuple, seed uint64) uint64 {
	s0 := binary.LittleEndian.Uint64(t.Src[0:8])
	s1 := binary.LittleEndian.Uint64(t.Src[8:16])
	d0 := binary.LittleEndian.Uint64(t.Dst[0:8])
	d1 := binary.LittleEndian.Uint64(t.Dst[8:16])
	v6 := uint64(0)
	if t.V6 {
		v6 = 1
	}
	p := uint64(t.SrcPort) | uint64(t.DstPort)<<16 | uint64(t.Proto)<<32 | v6<<40
	a := mix(s0^seed^0xa0761d6478bd642f, s1^0xe7037ed1a0b428db)
	b := mix(d0^seed^0x8ebc6af09c88c6e3, d1^0x589965cc75374cc3)
	return mix(a^p^0x1d8e4e27c47d124f, b^seed)
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// ICMP message classes, by the tracker's needs.
type icmpClass uint8

const (
	icmpOther     icmpClass = iota // not tracked: invalid, as in Linux
	icmpRequest                    // may start an entry (echo, timestamp, ...)
	icmpReply                      // answers a request; never starts an entry
	icmpError                      // quotes a packet: related to its flow
	icmpUntracked                  // ICMPv6 neighbour discovery and MLD: untracked
)

func classifyICMP(proto, typ uint8) icmpClass {
	if proto == ProtoICMP {
		switch typ {
		case 8, 13, 15, 17: // echo, timestamp, information, address mask
			return icmpRequest
		case 0, 14, 16, 18:
			return icmpReply
		case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
			return icmpError
		}
		return icmpOther
	}
	switch {
	case typ == 128 || typ == 139: // echo request, node information query
		return icmpRequest
	case typ == 129 || typ == 140:
		return icmpReply
	case typ >= 1 && typ <= 4: // unreachable, too big, time exceeded, parameter problem
		return icmpError
	case typ >= 130 && typ <= 137, typ >= 141 && typ <= 143,
		typ == 148, typ == 149, typ >= 151 && typ <= 153:
		// Linux's noct_valid_new: these are link-local control traffic.
		return icmpUntracked
	}
	return icmpOther
}

// icmpReplyType maps a query type to its answer and back.
func icmpReplyType(proto, typ uint8) (uint8, bool) {
	if proto == ProtoICMP {
		switch typ {
		case 8:
			return 0, true
		case 0:
			return 8, true
		case 13, 15, 17:
			return typ + 1, true
		case 14, 16, 18:
			return typ - 1, true
		}
		return 0, false
	}
	switch typ {
	case 128, 139:
		return typ + 1, true
	case 129, 140:
		return typ - 1, true
	}
	return 0, false
}
