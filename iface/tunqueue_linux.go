package iface

import (
	"encoding/binary"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tunQueue is one descriptor of a TUN or TAP device. The kernel takes and
// gives one packet per read(2) and write(2); with IFF_VNET_HDR a GSO
// super-packet of up to 64 KiB is one packet, which is what makes the
// system call per packet affordable.
type tunQueue struct {
	fd  int
	l3  bool    // TUN: synthesize and strip the Ethernet header
	mac [6]byte // TUN: the synthesized header's destination (the port's MAC)

	iov  [2]unix.Iovec
	whdr [VnetHdrLen]byte // Write's virtio_net_hdr, moved to the IP packet

	truncated, notIP, badVnet, txFull uint64
}

var _ Queue = (*tunQueue)(nil)

func (q *tunQueue) Fd() int { return q.fd }

func (q *tunQueue) Stats() QueueStats {
	return QueueStats{Truncated: q.truncated, TxRingFull: q.txFull, NotIP: q.notIP, BadVnetHdr: q.badVnet}
}

func (q *tunQueue) close() error {
	if q.fd < 0 {
		return nil
	}
	err := unix.Close(q.fd)
	q.fd = -1
	return err
}

// Read reads packets into the caller's buffers (it never hands out views)
// until none is pending or the batch is full. A TUN packet lands at
// offset+14, behind an Ethernet header Read writes, with its
// virtio_net_hdr at offset-VnetHdrLen as on every port; its csum_start
// and hdr_len are moved by the 14 bytes. Packets that are not IPv4 or
// IPv6, or whose virtio_net_hdr makes no sense, are dropped and counted.
func (q *tunQueue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if q.fd < 0 {
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(bufs) {
		b := bufs[n]
		if offset < VnetHdrLen || offset+ethLen >= len(b) {
			return n, unix.EINVAL
		}
		var r uintptr
		var e unix.Errno
		if q.l3 {
			q.iov[0].Base, q.iov[0].Len = &b[offset-VnetHdrLen], VnetHdrLen
			q.iov[1].Base = &b[offset+ethLen]
			q.iov[1].SetLen(len(b) - offset - ethLen)
			r, _, e = unix.Syscall(unix.SYS_READV, uintptr(q.fd), uintptr(unsafe.Pointer(&q.iov[0])), 2)
		} else {
			r, _, e = unix.Syscall(unix.SYS_READ, uintptr(q.fd), uintptr(unsafe.Pointer(&b[offset-VnetHdrLen])), uintptr(len(b)-offset+VnetHdrLen))
		}
		switch e {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			return n, nil
		case unix.EFAULT, unix.EINVAL, unix.EMSGSIZE:
			q.truncated++ // larger than the buffer: the kernel dropped it
			continue
		default:
			if n > 0 {
				return n, nil // the error comes back on the next Read
			}
			return 0, e
		}
		size := int(r) - VnetHdrLen
		if q.l3 {
			if !q.frame(b[offset:], size) {
				continue
			}
			size += ethLen
			shiftVnet(b[offset-VnetHdrLen:offset], ethLen)
		}
		if !ValidVnetHdr(b[offset-VnetHdrLen:offset], b[offset:offset+size]) {
			q.badVnet++
			continue
		}
		sizes[n] = size
		n++
	}
	return n, nil
}

// frame writes the Ethernet header in front of a TUN packet of size bytes
// at f[ethLen:]; false if the packet is neither IPv4 nor IPv6.
func (q *tunQueue) frame(f []byte, size int) bool {
	if size < 1 {
		q.notIP++
		return false
	}
	var et uint16
	switch f[ethLen] >> 4 {
	case 4:
		et = 0x0800
	case 6:
		et = 0x86dd
	default:
		q.notIP++
		return false
	}
	copy(f[0:6], q.mac[:])
	clear(f[6:12])
	binary.BigEndian.PutUint16(f[12:], et)
	return true
}

// Write writes each frame (virtio_net_hdr at offset-VnetHdrLen, frame at
// offset) with one system call; a TUN gets the IP packet alone, the
// header's offsets moved back by 14 bytes. The caller's buffers are not
// modified.
func (q *tunQueue) Write(bufs [][]byte, offset int) (int, error) {
	if q.fd < 0 {
		return 0, net.ErrClosed
	}
	sent := 0
	for _, b := range bufs {
		if len(b) < offset+ethLen {
			q.badVnet++
			continue
		}
		var e unix.Errno
		if q.l3 {
			copy(q.whdr[:], b[offset-VnetHdrLen:offset])
			shiftVnet(q.whdr[:], -ethLen)
			q.iov[0].Base, q.iov[0].Len = &q.whdr[0], VnetHdrLen
			q.iov[1].Base = &b[offset+ethLen]
			q.iov[1].SetLen(len(b) - offset - ethLen)
			_, _, e = unix.Syscall(unix.SYS_WRITEV, uintptr(q.fd), uintptr(unsafe.Pointer(&q.iov[0])), 2)
		} else {
			d := b[offset-VnetHdrLen:]
			_, _, e = unix.Syscall(unix.SYS_WRITE, uintptr(q.fd), uintptr(unsafe.Pointer(&d[0])), uintptr(len(d)))
		}
		switch e {
		case 0:
			sent++
		case unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
			q.txFull++
		case unix.EINVAL, unix.EMSGSIZE, unix.EFAULT:
			q.badVnet++ // this frame's fault (a header the kernel refused), not the port's
		default:
			return sent, e // EBADFD: the device is gone; EIO: down
		}
	}
	return sent, nil
}

// shiftVnet moves a virtio_net_hdr's csum_start and hdr_len by d bytes,
// for a frame that gained (d > 0) or lost (d < 0) a link-layer header.
func shiftVnet(h []byte, d int) {
	if h[0]&VnetFlagNeedsCsum != 0 {
		cs := int(binary.LittleEndian.Uint16(h[6:])) + d
		binary.LittleEndian.PutUint16(h[6:], uint16(max(cs, 0)))
	}
	if hl := int(binary.LittleEndian.Uint16(h[2:])); hl != 0 {
		binary.LittleEndian.PutUint16(h[2:], uint16(max(hl+d, 0)))
	}
}

// ValidVnetHdr checks a virtio_net_hdr against the Ethernet frame behind
// it, as the kernel does before it trusts one (virtio_net_hdr_to_skb): a
// known GSO type with a segment size, the partial checksum's start and
// field inside the frame, the header length inside the frame.
func ValidVnetHdr(h, frame []byte) bool {
	flags, gso := h[0], h[1]&^VnetGSOECN
	hdrLen := int(binary.LittleEndian.Uint16(h[2:]))
	gsoSize := binary.LittleEndian.Uint16(h[4:])
	if flags&VnetFlagNeedsCsum != 0 {
		start := int(binary.LittleEndian.Uint16(h[6:]))
		off := int(binary.LittleEndian.Uint16(h[8:]))
		if start+off+2 > len(frame) {
			return false
		}
	}
	switch gso {
	case VnetGSONone:
		return true
	case VnetGSOTCPv4, VnetGSOTCPv6, VnetGSOUDP, VnetGSOUDPL4:
	default:
		return false
	}
	return gsoSize != 0 && hdrLen <= len(frame)
}
