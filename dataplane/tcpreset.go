package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Resets for TCP to ferry. ferry listens on no TCP port, so every segment
// addressed to it is for a closed port, and RFC 793 (page 36, "If the
// connection does not exist (CLOSED)") says: answer anything but a reset
// with a reset, built from the segment as below, in place. As Linux,
// resets are rate-limited per destination like ICMP errors, and a segment
// whose checksum does not verify gets nothing.
//
// Only the local stage answers, so the filter's input chain, which runs
// before it, decides first.

const tcpMinHdr = header.TCPMinimumSize

// tcpReset turns segment p (IP header ihl bytes) into the reset RFC 793
// asks for, or drops it.
func (w *worker) tcpReset(p *Packet, ip []byte, ihl int, reason Drop) {
	seg := header.TCP(ip[ihl:])
	if len(seg) < tcpMinHdr || int(seg.DataOffset()) < tcpMinHdr || int(seg.DataOffset()) > len(seg) {
		p.Drop(DropLocalProtocol)
		return
	}
	flags := seg.Flags()
	if flags&header.TCPFlagRst != 0 {
		p.Drop(DropLocalProtocol) // never a reset about a reset
		return
	}
	src, dst := binary.BigEndian.Uint32(ip[12:]), binary.BigEndian.Uint32(ip[16:])
	if !p.needsCsum() && checksum.Checksum(seg, tcpPseudoSum(src, dst, len(seg))) != 0xffff {
		p.Drop(DropLocalProtocol)
		return
	}
	if !w.rl.allow(src, w.now) {
		p.Drop(DropTCPResetLimited)
		return
	}
	// If the segment has an ACK, the reset takes its sequence number from
	// the ACK field; otherwise it has sequence 0 and acknowledges the
	// segment: its sequence number plus its length (SYN and FIN count).
	var seq, ack uint32
	rflags := header.TCPFlagRst
	if flags&header.TCPFlagAck != 0 {
		seq = seg.AckNumber()
	} else {
		ack = seg.SequenceNumber() + uint32(len(seg)-int(seg.DataOffset()))
		if flags&header.TCPFlagSyn != 0 {
			ack++
		}
		if flags&header.TCPFlagFin != 0 {
			ack++
		}
		rflags |= header.TCPFlagAck
	}
	sport, dport := seg.SourcePort(), seg.DestinationPort()
	w.ctr.ports[p.in].drops[reason].Add(1)

	// A fresh 20-byte IP header (no options) and a bare TCP header, set
	// field by field (gvisor's Encode takes its fields by pointer, which
	// would put them on the heap).
	total := ipv4MinHdr + tcpMinHdr
	h := header.IPv4(ip[:ipv4MinHdr])
	h[0], h[1] = 0x45, 0
	h.SetTotalLength(uint16(total))
	h.SetID(w.nextIPID())
	h.SetFlagsFragmentOffset(0, 0)
	h.SetTTL(64)
	h[9] = protoTCP
	binary.BigEndian.PutUint32(h[12:], dst)
	binary.BigEndian.PutUint32(h[16:], src)
	t := header.TCP(ip[ipv4MinHdr:total])
	t.SetSourcePort(dport)
	t.SetDestinationPort(sport)
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetDataOffset(tcpMinHdr)
	t.SetFlags(uint8(rflags))
	t.SetWindowSize(0)
	t.SetChecksum(0)
	t.SetUrgentPointer(0)
	t.SetChecksum(^checksum.Checksum(t, tcpPseudoSum(dst, src, tcpMinHdr)))
	setHeaderChecksum(h)
	p.setFrame(p.off, ethHdrLen+total)
	if !w.routeLocal(p) {
		p.Drop(DropICMPNoRoute)
	}
}

// tcpPseudoSum is the RFC 793 pseudo-header's sum, without allocating.
func tcpPseudoSum(src, dst uint32, length int) uint16 {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], src)
	binary.BigEndian.PutUint32(b[4:], dst)
	b[9] = protoTCP
	binary.BigEndian.PutUint16(b[10:], uint16(length))
	return checksum.Checksum(b[:], 0)
}

func (w *worker) nextIPID() uint16 {
	w.ipID++
	return w.ipID
}
