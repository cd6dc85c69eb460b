package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/filter"
)

// The conntrack stage finds every IP packet's connection before the
// prerouting hook, as Linux's nf_conntrack_in does at priority -200, so
// each filter hook can match `ct state`. It runs only while a ruleset is
// loaded: without one, nothing is tracked and the stage is one pass over
// the batch.
//
// A packet that starts a flow comes back from Track as new with its slot's
// scratch entry, which is in no table yet; confirm inserts it once the
// packet has passed the last hook on its way (postrouting, or input for a
// packet to ferry), so a dropped packet leaves nothing behind.

// ctSlot is the per-slot state the conntrack stage and the filter hooks
// use: the unconfirmed entry of a new flow and the fields the filter
// reads, parsed once per packet.
type ctSlot struct {
	scratch conntrack.Conn
	fp      filter.Packet
	// NAT (nat.go): the entry's handle and other tuple, from Track, and
	// the ICMP query identifier.
	nat   uint32
	id    uint16
	other conntrack.Tuple
	frag  int // first fragment: its memo in worker.frags, else -1
}

// ctStateBits maps the tracker's states onto the filter's ct state bits.
func ctStateBits(s conntrack.CtState) uint8 {
	switch s {
	case conntrack.StateNew:
		return filter.CtNew
	case conntrack.StateEstablished:
		return filter.CtEstablished
	case conntrack.StateRelated:
		return filter.CtRelated
	case conntrack.StateUntracked:
		return filter.CtUntracked
	}
	return filter.CtInvalid
}

func (w *worker) conntrack() {
	w.rules = w.r.ruleset.Load() // one ruleset for the whole batch, even across a reload
	for _, p := range w.vec {
		if p.next != stageConntrack {
			continue
		}
		p.next = stagePrerouting
		if w.rules == nil {
			continue
		}
		w.track(p)
	}
}

// track parses p into its slot's filter fields and the worker's conntrack
// Meta, and looks up (or starts) its connection.
func (w *worker) track(p *Packet) {
	cs := p.cs
	w.forgetNew(p)
	p.ct, cs.nat, cs.frag = nil, 0, -1
	frag := w.classify(p, &cs.fp, &w.meta)
	cs.id = w.meta.Tuple.SrcPort
	if !w.rules.track {
		cs.fp.CtState = filter.CtUntracked
		return
	}
	if frag == fragLater {
		w.fragRecall(header.IPv4(p.IP()), cs)
		return
	}
	res := w.r.ct.Track(&w.meta, w.nowNS, &cs.scratch)
	p.ct, p.ctDir = res.Conn, res.Dir
	if res.Conn == &cs.scratch {
		p.flags |= flagCtNew
	}
	cs.fp.CtState = ctStateBits(res.State)
	cs.fp.CtMark = res.Mark
	if res.NAT != 0 {
		cs.nat, cs.other = res.NAT, res.Other
	}
	if frag == fragFirst {
		w.fragRemember(header.IPv4(p.IP()), cs)
	}
}

// confirm inserts the new flow p started, now that p has passed every
// hook on its way. A full table drops the packet: a flow that cannot be
// tracked would have its replies judged invalid.
func (w *worker) confirm(p *Packet) {
	if p.flags&flagCtNew == 0 {
		return
	}
	p.flags &^= flagCtNew
	c, err := w.r.ct.Confirm(p.ct, w.nowNS)
	if err != nil {
		if h := p.cs.scratch.NAT; h != 0 && h != natStatic {
			w.r.nat.Release(natID(h), w.nowNS)
		}
	}
	switch err {
	case nil:
		p.ct = c
	case conntrack.ErrReplyTaken:
		p.ct = nil
		p.Drop(DropCtReplyTaken)
	default:
		p.ct = nil
		p.Drop(DropCtTableFull)
	}
}

// ICMP queries, keyed by their identifier (RFC 792, RFC 950).
func icmp4HasIdent(t uint8) bool {
	switch t {
	case icmpEchoReply, icmpEchoRequest, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

// classify fills fp (what the filter reads) and m (what the tracker reads)
// from p's headers in one pass.
func (w *worker) classify(p *Packet, fp *filter.Packet, m *conntrack.Meta) fragKind {
	// Field by field: a composite literal or Meta.Reset clears the whole
	// structs through memclr, which was 15% of the filtered pipeline.
	fp.IIf, fp.OIf, fp.Mark = p.in, -1, p.mark
	if p.flags&flagLocalOrigin != 0 {
		fp.IIf = -1
		fp.OIf = p.out
	}
	fp.SrcPort, fp.DstPort, fp.HasPorts = 0, 0, false
	fp.ICMPType, fp.ICMPCode, fp.TCPFlags = 0, 0, 0
	fp.CtState, fp.CtMark = 0, 0
	m.HasInner, m.Truncated, m.HasWScale, m.WScale = false, false, false, 0
	m.Seq, m.Ack, m.Window, m.Flags, m.Payload = 0, 0, 0, 0, 0
	if p.flags&flagIPv6 != 0 {
		w.classify6(p, fp, m)
		return fragNone
	}
	ip := header.IPv4(p.IP())
	fp.Family = 4
	src, dst := [4]byte(ip.SourceAddressSlice()), [4]byte(ip.DestinationAddressSlice())
	fp.Src, fp.Dst = conntrack.V4(src), conntrack.V4(dst)
	proto := ip.Protocol()
	fp.L4Proto = proto
	fp.Length = uint32(ip.TotalLength())
	tos, _ := ip.TOS()
	fp.DSCP = tos >> 2
	m.Tuple.SetV4(src, dst, 0, 0, proto)
	end := min(int(ip.TotalLength()), len(ip))
	l4 := []byte(ip[min(int(ip.HeaderLength()), end):end])
	if ip.FragmentOffset() != 0 {
		// A later fragment has no L4 header: no port, ICMP or flags match
		// (HasPorts stays false), and no tuple of its own (fragRecall).
		return fragLater
	}
	w.classifyL4(fp, m, l4, proto, false)
	if ip.More() {
		return fragFirst
	}
	return fragNone
}

type fragKind uint8

const (
	fragNone fragKind = iota
	fragFirst
	fragLater
)

// classifyL4 reads the transport header shared by both families.
func (w *worker) classifyL4(fp *filter.Packet, m *conntrack.Meta, l4 []byte, proto uint8, v6 bool) {
	switch proto {
	case protoTCP:
		t := header.TCP(l4)
		if len(l4) < header.TCPMinimumSize || int(t.DataOffset()) < header.TCPMinimumSize || int(t.DataOffset()) > len(l4) {
			m.Truncated = true
			return
		}
		fp.HasPorts = true
		fp.SrcPort, fp.DstPort = t.SourcePort(), t.DestinationPort()
		fp.TCPFlags = uint8(t.Flags())
		m.Tuple.SrcPort, m.Tuple.DstPort = fp.SrcPort, fp.DstPort
		m.Seq, m.Ack, m.Window, m.Flags = t.SequenceNumber(), t.AckNumber(), t.WindowSize(), fp.TCPFlags
		m.Payload = uint32(len(l4) - int(t.DataOffset()))
		if fp.TCPFlags&filter.TCPSyn != 0 {
			m.WScale, m.HasWScale = tcpWindowScale(l4[header.TCPMinimumSize:t.DataOffset()])
		}
	case protoUDP, conntrack.ProtoUDPLite:
		if len(l4) < header.UDPMinimumSize {
			m.Truncated = true
			return
		}
		u := header.UDP(l4)
		fp.HasPorts = true
		fp.SrcPort, fp.DstPort = u.SourcePort(), u.DestinationPort()
		m.Tuple.SrcPort, m.Tuple.DstPort = fp.SrcPort, fp.DstPort
		m.Payload = uint32(len(l4) - header.UDPMinimumSize)
	case protoICMP, nhICMPv6:
		if len(l4) < icmpHdrLen {
			m.Truncated = true
			return
		}
		fp.HasPorts = true
		fp.ICMPType, fp.ICMPCode = l4[0], l4[1]
		var id uint16
		isErr := false
		if v6 {
			isErr = fp.ICMPType < 128
			if fp.ICMPType == icmp6EchoRequest || fp.ICMPType == icmp6EchoReply {
				id = binary.BigEndian.Uint16(l4[4:])
			}
		} else {
			isErr = isICMPError(fp.ICMPType)
			if icmp4HasIdent(fp.ICMPType) {
				id = header.ICMPv4(l4).Ident()
			}
		}
		m.Tuple.SetICMP(fp.ICMPType, fp.ICMPCode, id)
		if isErr {
			m.HasInner = quotedTuple(&m.Inner, l4[icmpHdrLen:], v6)
		}
	default:
		// Other protocols are tracked on addresses alone; SCTP and DCCP
		// ports still match in the filter.
		if len(l4) >= 4 && (proto == filter.ProtoSCTP || proto == filter.ProtoDCCP) {
			fp.HasPorts = true
			fp.SrcPort, fp.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	}
}

// quotedTuple reads the tuple of the packet an ICMP error quotes: its IP
// header and at least the first 8 bytes after it (RFC 792), which hold the
// ports or the ICMP identifier.
func quotedTuple(k *conntrack.Tuple, q []byte, v6 bool) bool {
	var l4 []byte
	var proto uint8
	if v6 {
		if len(q) < header.IPv6MinimumSize {
			return false
		}
		ip := header.IPv6(q)
		proto = ip.NextHeader()
		k.Src, k.Dst = [16]byte(ip.SourceAddressSlice()), [16]byte(ip.DestinationAddressSlice())
		k.V6 = true
		l4 = q[header.IPv6MinimumSize:]
	} else {
		if len(q) < header.IPv4MinimumSize {
			return false
		}
		ip := header.IPv4(q)
		hl := int(ip.HeaderLength())
		if hl < header.IPv4MinimumSize || hl > len(q) || ip.FragmentOffset() != 0 {
			return false
		}
		proto = ip.Protocol()
		k.SetV4([4]byte(ip.SourceAddressSlice()), [4]byte(ip.DestinationAddressSlice()), 0, 0, proto)
		l4 = q[hl:]
	}
	k.Proto = proto
	if len(l4) < 8 {
		return false
	}
	switch proto {
	case protoTCP, protoUDP, conntrack.ProtoUDPLite:
		k.SrcPort, k.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case protoICMP, nhICMPv6:
		var id uint16
		if (!v6 && icmp4HasIdent(l4[0])) || (v6 && (l4[0] == icmp6EchoRequest || l4[0] == icmp6EchoReply)) {
			id = binary.BigEndian.Uint16(l4[4:])
		}
		k.SetICMP(l4[0], l4[1], id)
	}
	return true
}

// tcpWindowScale finds the window scale option (RFC 7323) in a SYN's
// options.
func tcpWindowScale(opts []byte) (uint8, bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of options
			return 0, false
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return 0, false
		}
		if opts[i] == 3 && opts[i+1] == 3 {
			return opts[i+2], true
		}
		i += int(opts[i+1])
	}
	return 0, false
}

func (w *worker) classify6(p *Packet, fp *filter.Packet, m *conntrack.Meta) {
	ip := header.IPv6(p.IP())
	fp.Family = 6
	fp.Src, fp.Dst = [16]byte(ip.SourceAddressSlice()), [16]byte(ip.DestinationAddressSlice())
	fp.L4Proto = p.proto
	fp.Length = uint32(header.IPv6MinimumSize) + uint32(ip.PayloadLength())
	tc, _ := ip.TOS()
	fp.DSCP = tc >> 2
	m.Tuple = conntrack.Tuple{Src: fp.Src, Dst: fp.Dst, Proto: p.proto, V6: true}
	end := min(int(fp.Length), len(ip))
	l4off := p.l4 - p.l3
	if l4off <= 0 || l4off > end {
		m.Truncated = true
		return
	}
	w.classifyL4(fp, m, ip[l4off:end], p.proto, true)
}

// Later IPv4 fragments carry no ports. Their first fragment (the kernel's
// RSS hash keeps a datagram's fragments on one worker, as it hashes
// fragments by addresses only) leaves its ports and state here, keyed by
// (source, destination, protocol, ID), so the filter judges the rest of
// the datagram as it judged the first; they change nothing in the flow. A
// later fragment whose first is unknown (reordered, or evicted) is
// invalid, as Linux would find it without reassembly.
const fragSlots = 64

type fragMemo struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
	ok       bool
	fp       filter.Packet
	nat      uint32
	other    conntrack.Tuple
}

func fragSlot(src, dst [4]byte, id uint16) int {
	h := binary.BigEndian.Uint32(src[:]) ^ binary.BigEndian.Uint32(dst[:])*31 ^ uint32(id)*2654435761
	return int(h>>26) & (fragSlots - 1)
}

// fragRemember keeps a first fragment's filter fields, state included.
func (w *worker) fragRemember(ip header.IPv4, cs *ctSlot) {
	src, dst := [4]byte(ip.SourceAddressSlice()), [4]byte(ip.DestinationAddressSlice())
	cs.frag = fragSlot(src, dst, ip.ID())
	f := &w.frags[cs.frag]
	f.src, f.dst, f.id, f.proto, f.ok = src, dst, ip.ID(), ip.Protocol(), true
	f.fp, f.nat, f.other = cs.fp, cs.nat, cs.other
}

// fragRecall gives a later fragment its first fragment's ports and state.
func (w *worker) fragRecall(ip header.IPv4, cs *ctSlot) {
	fp := &cs.fp
	src, dst := [4]byte(ip.SourceAddressSlice()), [4]byte(ip.DestinationAddressSlice())
	f := &w.frags[fragSlot(src, dst, ip.ID())]
	if !f.ok || f.src != src || f.dst != dst || f.id != ip.ID() || f.proto != ip.Protocol() {
		fp.CtState = filter.CtInvalid
		return
	}
	fp.HasPorts, fp.SrcPort, fp.DstPort = f.fp.HasPorts, f.fp.SrcPort, f.fp.DstPort
	fp.ICMPType, fp.ICMPCode, fp.TCPFlags = f.fp.ICMPType, f.fp.ICMPCode, f.fp.TCPFlags
	fp.CtState, fp.CtMark = f.fp.CtState, f.fp.CtMark
	// A translated datagram's later fragments are translated as its
	// first was (nat.go updates the memo when it decides a new flow's).
	cs.nat, cs.other = f.nat, f.other
}
