package dataplane

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/iface"
)

// Reassembly of fragments addressed to ferry itself (RFC 791 section 3.2,
// RFC 1122 3.3.2), so that echo requests of any size, and later the
// control plane's own traffic, reach the local stage whole. Fragments that
// ferry forwards are never touched.
//
// Bounds, as Linux's: at most ipfrag_high_thresh (4 MiB) of reassembly
// buffers for the whole router, split evenly between the workers and
// allocated when the worker is built, so the packet path allocates
// nothing and a flood of fragments cannot grow ferry's memory; a datagram
// not completed within ipfrag_time (30 s) is dropped, with an ICMP time
// exceeded (fragment reassembly) to its sender if its first fragment came
// (RFC 792, RFC 1122 3.3.2). When every buffer is taken, new datagrams are
// refused until one completes or expires, as Linux refuses them above the
// threshold.
//
// A fragment that overlaps another of its datagram drops the whole
// datagram (RFC 5722's rule for IPv6, which Linux applies to IPv4 too); an
// exact or contained repeat is dropped alone, as Linux drops duplicates.
//
// State is per worker. The ports' PACKET_FANOUT_HASH group picks a worker
// by the kernel's symmetric flow hash (__skb_get_hash_symmetric), whose
// dissector stops at an IPv4 fragment before the ports: every fragment of
// a datagram hashes on its addresses and protocol alone and so lands on
// one worker, as long as the fragments come in by the same port. Fragments
// of one datagram arriving on two ports may meet different workers; the
// datagram then times out as it would if a fragment were lost.

const (
	reasmMemory  = 4 << 20          // ipfrag_high_thresh
	reasmTime    = 30 * time.Second // ipfrag_time
	reasmMaxData = 65535 - ipv4MinHdr
	reasmBufSize = 65536
	// reasmMaxRuns bounds the distinct runs of received bytes one datagram
	// may have; in-order or reversed fragments keep it at one or two.
	reasmMaxRuns = 32
)

type reassembler struct {
	slots     []reasmSlot
	used      int
	bytes     int       // payload bytes held in all slots
	nextCheck time.Time // no deadline before this
}

type span struct{ from, to int }

type reasmSlot struct {
	used     bool
	src, dst uint32
	id       uint16
	proto    uint8
	in       int // port of the last fragment, for the ICMP error
	deadline time.Time
	hdr      [60]byte // the first fragment's header, once it came
	hdrLen   int
	total    int // payload length, known from the last fragment; -1 until then
	runs     [reasmMaxRuns]span
	nruns    int
	held     int // payload bytes held
	data     []byte
}

// initReassembly gives a worker its share of the buffers (none for the
// control goroutine's pipeline, which receives nothing).
func (ra *reassembler) init(workers int, id int) {
	if id < 0 {
		return
	}
	n := max(reasmMemory/reasmBufSize/max(workers, 1), 2)
	ra.slots = make([]reasmSlot, n)
	for i := range ra.slots {
		ra.slots[i].data = make([]byte, reasmBufSize)
	}
}

// held reports the datagrams in progress and the payload bytes they hold.
func (ra *reassembler) held() (datagrams, bytes int) {
	for i := range ra.slots {
		if ra.slots[i].used {
			datagrams++
			bytes += ra.slots[i].held
		}
	}
	return datagrams, bytes
}

// Outcome of adding a fragment.
type reasmResult uint8

const (
	reasmHeld      reasmResult = iota // kept, datagram not complete yet
	reasmComplete                     // the slot holds the whole datagram
	reasmDuplicate                    // dropped alone: bytes already held
	reasmOverlap                      // datagram dropped: partial overlap
	reasmMalformed                    // bad length or offset (datagram dropped if one was open)
	reasmNoMemory                     // no free slot
)

// add files one fragment (header h, which input validated) and reports
// what became of it; on reasmComplete the slot is returned too.
func (ra *reassembler) add(h header.IPv4, in int, now time.Time) (reasmResult, *reasmSlot) {
	ihl := int(h.HeaderLength())
	frag := binary.BigEndian.Uint16(h[6:])
	off := int(frag&0x1fff) * 8
	more := frag&0x2000 != 0
	n := int(h.TotalLength()) - ihl
	end := off + n
	src, dst := binary.BigEndian.Uint32(h[12:]), binary.BigEndian.Uint32(h[16:])
	id, proto := h.ID(), h.Protocol()

	var s *reasmSlot
	var free *reasmSlot
	for i := range ra.slots {
		c := &ra.slots[i]
		if !c.used {
			if free == nil {
				free = c
			}
			continue
		}
		if c.id == id && c.src == src && c.dst == dst && c.proto == proto {
			s = c
			break
		}
	}
	if n <= 0 || (more && n%8 != 0) || end > reasmMaxData {
		if s != nil {
			ra.release(s)
		}
		return reasmMalformed, nil
	}
	if s == nil {
		if free == nil {
			return reasmNoMemory, nil
		}
		s = free
		*s = reasmSlot{used: true, src: src, dst: dst, id: id, proto: proto, total: -1,
			deadline: now.Add(reasmTime), data: s.data}
		if ra.used == 0 || s.deadline.Before(ra.nextCheck) {
			ra.nextCheck = s.deadline
		}
		ra.used++
	}
	s.in = in
	last := 0
	if s.nruns > 0 {
		last = s.runs[s.nruns-1].to
	}
	switch {
	case !more && (s.total >= 0 && s.total != end || end < last):
		ra.release(s)
		return reasmMalformed, nil
	case more && s.total >= 0 && end > s.total:
		ra.release(s)
		return reasmMalformed, nil
	}
	// Where the new run goes, and whether it touches a held one.
	k := 0
	for k < s.nruns && s.runs[k].to <= off {
		k++
	}
	if k < s.nruns && s.runs[k].from < end {
		if off >= s.runs[k].from && end <= s.runs[k].to {
			return reasmDuplicate, nil
		}
		ra.release(s)
		return reasmOverlap, nil
	}
	joinPrev := k > 0 && s.runs[k-1].to == off
	joinNext := k < s.nruns && s.runs[k].from == end
	switch {
	case joinPrev && joinNext:
		s.runs[k-1].to = s.runs[k].to
		copy(s.runs[k:], s.runs[k+1:s.nruns])
		s.nruns--
	case joinPrev:
		s.runs[k-1].to = end
	case joinNext:
		s.runs[k].from = off
	default:
		if s.nruns == reasmMaxRuns {
			ra.release(s)
			return reasmMalformed, nil
		}
		copy(s.runs[k+1:s.nruns+1], s.runs[k:s.nruns])
		s.runs[k] = span{off, end}
		s.nruns++
	}
	copy(s.data[off:end], h[ihl:ihl+n])
	s.held += n
	ra.bytes += n
	if !more {
		s.total = end
	}
	if off == 0 {
		s.hdrLen = copy(s.hdr[:], h[:ihl])
	}
	if s.total >= 0 && s.hdrLen > 0 && s.nruns == 1 && s.runs[0] == (span{0, s.total}) {
		if s.hdrLen+s.total > 65535 {
			ra.release(s)
			return reasmMalformed, nil
		}
		return reasmComplete, s
	}
	return reasmHeld, nil
}

// build writes the whole datagram of a complete slot into ip (which must
// hold hdrLen+total bytes) and frees the slot. It returns the length.
func (ra *reassembler) build(s *reasmSlot, ip []byte) int {
	n := copy(ip, s.hdr[:s.hdrLen])
	n += copy(ip[n:], s.data[:s.total])
	h := header.IPv4(ip[:s.hdrLen])
	h.SetTotalLength(uint16(n))
	h.SetFlagsFragmentOffset(h.Flags()&header.IPv4FlagDontFragment, 0)
	setHeaderChecksum(h)
	ra.release(s)
	return n
}

func (ra *reassembler) release(s *reasmSlot) {
	s.used = false
	ra.used--
	ra.bytes -= s.held
}

// publish shows the reassembly state to ferryctl (show stats).
func (w *worker) publishReasm() {
	w.ctr.reasmDatagrams.Store(int64(w.ra.used))
	w.ctr.reasmBytes.Store(int64(w.ra.bytes))
}

// reassemble is local's handling of a fragment: it reports true when p now
// holds the whole datagram, else p has been kept (and its buffer is free
// again) or dropped with a reason.
func (w *worker) reassemble(p *Packet) bool {
	h := header.IPv4(p.buf[p.l3 : p.off+p.n])
	res, s := w.ra.add(h, p.in, w.now)
	defer w.publishReasm()
	switch res {
	case reasmComplete:
		if p.l3+s.hdrLen+s.total > len(p.buf) {
			// p.buf is a view of its RX slot, sized for one frame: build
			// the datagram in the packet's own buffer, behind the same
			// Ethernet header.
			copy(p.own[p.off-iface.VnetHdrLen:p.l3], p.buf[p.off-iface.VnetHdrLen:p.l3])
			p.buf = p.own
		}
		n := w.ra.build(s, p.buf[p.l3:])
		p.setFrame(p.off, ethHdrLen+n)
		return true
	case reasmHeld:
		p.next, p.drop = stageDone, DropNone
	case reasmDuplicate, reasmOverlap:
		p.Drop(DropReasmOverlap)
	case reasmNoMemory:
		p.Drop(DropReasmNoMemory)
	default:
		p.Drop(DropReasmMalformed)
	}
	return false
}

// reasmExpire drops the datagrams whose time is up, sending an ICMP time
// exceeded (fragment reassembly) about those whose first fragment came,
// quoting it (RFC 792), from a spare buffer appended to the batch.
func (w *worker) reasmExpire() {
	ra := &w.ra
	if ra.used == 0 || w.now.Before(ra.nextCheck) {
		return
	}
	var next time.Time
	for i := range ra.slots {
		s := &ra.slots[i]
		if !s.used {
			continue
		}
		if w.now.Before(s.deadline) {
			if next.IsZero() || s.deadline.Before(next) {
				next = s.deadline
			}
			continue
		}
		var e *Packet
		if s.hdrLen > 0 {
			e = w.takeSpare()
		}
		if e == nil {
			w.ctr.ports[s.in].drops[DropReasmTimeout].Add(1)
			ra.release(s)
			continue
		}
		// The quote: the first fragment's header and the data after it.
		l3 := Headroom + ethHdrLen
		n := copy(e.buf[l3:], s.hdr[:s.hdrLen])
		n += copy(e.buf[l3+n:], s.data[:min(s.runs[0].to, icmpMaxError-ipv4MinHdr-icmpHdrLen-n)])
		e.setFrame(Headroom, ethHdrLen+n)
		e.in = s.in
		e.next = stageLocal
		w.vec = append(w.vec, e)
		ra.release(s)
		w.icmpError(e, icmpTimeExceeded, icmpReasmTimeout, 0, DropReasmTimeout)
	}
	ra.nextCheck = next
	w.publishReasm()
}

// reasmIdle runs the expiry from the worker's idle loop, where no batch
// comes to carry it.
func (w *worker) reasmIdle() {
	if w.ra.used == 0 || w.now.Before(w.ra.nextCheck) {
		return
	}
	w.vec = w.vec[:0]
	w.reasmExpire()
	if len(w.vec) > 0 {
		w.process()
	}
}
