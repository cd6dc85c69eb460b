package dataplane

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/iface"
)

// fragment splits packets larger than the egress MTU into fragments
// (RFC 791 section 3.2, RFC 1812 5.2.6). Only packets that may be
// fragmented get here: forward answered the others with "fragmentation
// needed". The first fragment stays in the packet's own buffer; the rest go
// to spare buffers. If there are not enough spares the packet is dropped
// whole rather than sent in part.
func (w *worker) fragment() {
	for _, p := range w.vec {
		if p.next != stageFragment {
			continue
		}
		p.next = stageNeighbour
		mtu := w.r.ports[p.out].mtu
		// IPv6 is never fragmented on the way (forward6 sent packet too big).
		if p.n-ethHdrLen <= mtu || p.gsoType() != iface.VnetGSONone || p.flags&flagIPv6 != 0 {
			continue
		}
		if !w.split(p, mtu) {
			p.Drop(DropFragFailed)
		}
	}
}

func (w *worker) split(p *Packet, mtu int) bool {
	ip := p.buf[p.l3 : p.off+p.n]
	ihl := int(ip[0]&0xf) * 4
	if p.needsCsum() && !completeChecksum(p) {
		return false
	}
	var opts [40]byte // options copied into every fragment after the first
	nOpts, ok := copiedOptions(ip[ipv4MinHdr:ihl], opts[:])
	if !ok {
		return false
	}
	restHdr := ipv4MinHdr + nOpts
	firstData := (mtu - ihl) &^ 7
	restData := (mtu - restHdr) &^ 7
	if firstData <= 0 || restData <= 0 {
		return false
	}
	payload := len(ip) - ihl
	frag := binary.BigEndian.Uint16(ip[6:])
	baseOff := int(frag&0x1fff) * 8
	origMF := frag&0x2000 != 0
	need := (payload - firstData + restData - 1) / restData
	if need > len(w.free) {
		return false
	}

	// Fragments after the first, built from the untouched original.
	for at := firstData; at < payload; at += restData {
		size := min(restData, payload-at)
		s := w.takeSpare()
		b := s.buf[Headroom:]
		copy(b[:ethHdrLen], p.buf[p.off:p.l3])
		h := b[ethHdrLen : ethHdrLen+restHdr]
		copy(h[:ipv4MinHdr], ip[:ipv4MinHdr])
		copy(h[ipv4MinHdr:], opts[:nOpts])
		h[0] = 0x40 | byte(restHdr/4)
		copy(b[ethHdrLen+restHdr:], ip[ihl+at:ihl+at+size])
		last := at+size == payload
		setFragFields(h, restHdr+size, baseOff+at, !last || origMF)
		s.setFrame(Headroom, ethHdrLen+restHdr+size)
		s.in, s.out, s.nh, s.hop = p.in, p.out, p.nh, p.hop
		s.flags |= p.flags &^ flagSpare
		s.next = stageNeighbour
		w.vec = append(w.vec, s)
	}
	// The first fragment is the packet itself, cut short.
	setFragFields(ip[:ihl], ihl+firstData, baseOff, true)
	p.n = ethHdrLen + ihl + firstData
	clear(p.vnet())
	return true
}

func setFragFields(h []byte, total, offset int, more bool) {
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	f := uint16(offset/8) | uint16(h[6]&0x40)<<8 // keep DF (only local packets may have it here)
	if more {
		f |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], f)
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^checksum.Checksum(h[:int(h[0]&0xf)*4], 0))
}

// copiedOptions writes the options whose copy flag is set (RFC 791: they
// must appear in every fragment), padded with End-of-Options to a multiple
// of four bytes, and returns their length.
func copiedOptions(in, out []byte) (int, bool) {
	n := 0
	for i := 0; i < len(in); {
		t := in[i]
		if t == 0 { // end of options
			break
		}
		if t == 1 { // no-op
			i++
			continue
		}
		if i+1 >= len(in) || in[i+1] < 2 || i+int(in[i+1]) > len(in) {
			return 0, false
		}
		l := int(in[i+1])
		if t&0x80 != 0 {
			n += copy(out[n:], in[i:i+l])
		}
		i += l
	}
	for n%4 != 0 {
		out[n] = 0
		n++
	}
	return n, true
}

// completeChecksum finishes a checksum the sender left to offload
// (virtio_net_hdr NEEDS_CSUM: the field holds the pseudo-header sum), as the
// kernel's skb_checksum_help does, because fragments cannot be offloaded.
func completeChecksum(p *Packet) bool {
	v := p.vnet()
	start := int(binary.LittleEndian.Uint16(v[6:]))
	off := int(binary.LittleEndian.Uint16(v[8:]))
	if start+off+2 > p.n {
		return false
	}
	f := p.Frame()
	sum := ^checksum.Checksum(f[start:], 0)
	if sum == 0 && f[p.l3-p.off+9] == protoUDP {
		sum = 0xffff // RFC 768: zero means "no checksum"
	}
	binary.BigEndian.PutUint16(f[start+off:], sum)
	v[0] &^= iface.VnetFlagNeedsCsum
	return true
}
