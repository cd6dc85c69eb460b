package dataplane

import (
	"encoding/binary"

	"github.com/ferry-router/ferry/dataplane/neigh"
)

// ARP for IPv4 over Ethernet (RFC 826): 28 bytes after the Ethernet header.
const (
	arpLen       = 28
	arpRequest   = 1
	arpReply     = 2
	arpFrameLen  = ethHdrLen + arpLen
	arpMinFrame  = 60 // Ethernet minimum without FCS; ARP frames are padded to it
	offARPOper   = 6
	offARPSHA    = 8
	offARPSPA    = 14
	offARPTHA    = 18
	offARPTPA    = 24
	arpHdrPrefix = "\x00\x01\x08\x00\x06\x04" // htype Ethernet, ptype IPv4, hlen 6, plen 4
)

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arp answers requests for ferry's addresses in place, learns the sender of
// anything addressed to ferry, and hands frames that waited for a now
// resolved neighbour back to the pipeline at the neighbour stage.
func (w *worker) arp() {
	for _, p := range w.vec {
		if p.next != stageARP {
			continue
		}
		a := p.buf[p.l3 : p.off+p.n]
		if len(a) < arpLen || string(a[:6]) != arpHdrPrefix {
			p.Drop(DropARPMalformed)
			continue
		}
		oper := binary.BigEndian.Uint16(a[offARPOper:])
		spa := binary.BigEndian.Uint32(a[offARPSPA:])
		tpa := binary.BigEndian.Uint32(a[offARPTPA:])
		sha := [6]byte(a[offARPSHA : offARPSHA+6])
		port := w.r.ports[p.in]
		key := neigh.Key{Port: p.in, IP: spa}

		if !port.hasAddr(tpa) || (oper != arpRequest && oper != arpReply) || sha[0]&1 != 0 || spa == 0 {
			// Not ours to answer. A gratuitous ARP still refreshes an entry
			// ferry already has (Linux's default arp_accept=0 behaviour).
			if spa == tpa && spa != 0 && sha[0]&1 == 0 && w.r.neigh.Lookup(key) != nil {
				w.release(p.in, spa, w.r.neigh.Confirm(key, sha, w.now, false))
			}
			p.Drop(DropARPNotForUs)
			continue
		}
		w.release(p.in, spa, w.r.neigh.Confirm(key, sha, w.now, oper == arpReply))
		if oper == arpReply {
			p.next, p.drop = stageDone, DropNone
			w.ctr.local.Add(1)
			continue
		}
		// Turn the request into the reply in place.
		binary.BigEndian.PutUint16(a[offARPOper:], arpReply)
		copy(a[offARPTHA:], sha[:])
		binary.BigEndian.PutUint32(a[offARPTPA:], spa)
		copy(a[offARPSHA:], port.mac[:])
		binary.BigEndian.PutUint32(a[offARPSPA:], tpa)
		copy(p.dstMAC(), sha[:])
		copy(p.srcMAC(), port.mac[:])
		clear(p.vnet())
		p.out = p.in
		p.flags |= flagLocalOrigin | flagMACSet
		p.next = stageTransmit
		w.ctr.local.Add(1)
	}
}

// release puts frames that waited for ip on port back into the batch, at
// the neighbour stage. The neighbour stage queued them as
// [ingress port][virtio_net_hdr][frame] (see neighbour.go).
func (w *worker) release(port int, ip uint32, queued [][]byte) {
	for _, q := range queued {
		s := w.unpark(q)
		if s == nil {
			w.ctr.ports[port].drops[DropNeighborQueue].Add(1)
			continue
		}
		s.out, s.nh = port, ip
		s.next = stageNeighbour
	}
}

// unpark copies a frame the neighbour stage queued back into a spare
// packet appended to the batch, or returns nil when no spare is free.
func (w *worker) unpark(q []byte) *Packet {
	s := w.takeSpare()
	if s == nil {
		return nil
	}
	copy(s.buf[Headroom-queuedPrefix:], q)
	s.off, s.n, s.l3 = Headroom, len(q)-queuedPrefix, Headroom+ethHdrLen
	s.in = int(q[0])
	w.vec = append(w.vec, s)
	return s
}

// buildARP writes an ARP frame at b (which must hold arpMinFrame bytes) and
// returns its length.
func buildARP(b []byte, oper uint16, ethDst, sha [6]byte, spa uint32, tha [6]byte, tpa uint32) int {
	copy(b[0:6], ethDst[:])
	copy(b[6:12], sha[:])
	binary.BigEndian.PutUint16(b[12:], etherTypeARP)
	a := b[ethHdrLen:]
	copy(a, arpHdrPrefix)
	binary.BigEndian.PutUint16(a[offARPOper:], oper)
	copy(a[offARPSHA:], sha[:])
	binary.BigEndian.PutUint32(a[offARPSPA:], spa)
	copy(a[offARPTHA:], tha[:])
	binary.BigEndian.PutUint32(a[offARPTPA:], tpa)
	clear(b[arpFrameLen:arpMinFrame])
	return arpMinFrame
}

// sendARPRequest queues a broadcast who-has for target on port in this
// batch. The sender address is ferry's address on target's network.
func (w *worker) sendARPRequest(port int, target uint32) {
	s := w.takeSpare()
	if s == nil {
		return // the table retries on its next tick
	}
	pt := w.r.ports[port]
	n := buildARP(s.buf[Headroom:], arpRequest, broadcastMAC, pt.mac, pt.sourceFor(target), [6]byte{}, target)
	s.setFrame(Headroom, n)
	s.out = port
	s.flags |= flagLocalOrigin | flagMACSet
	s.next = stageTransmit
	w.vec = append(w.vec, s)
}
