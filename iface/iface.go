// Package iface moves frames between ferry's workers and Linux interfaces
// (AF_PACKET rings, TUN and TAP devices). It does I/O and nothing else: no
// parsing beyond what the kernel interface itself requires.
//
// TUN and TAP devices are created or attached with github.com/songgao/water,
// which ferry wraps rather than extends: water creates the device and sets
// its owner, group and persistence, then ferry attaches its own queue
// descriptors with the flags water does not know (IFF_VNET_HDR,
// IFF_MULTI_QUEUE) and sets TUNSETOFFLOAD through them (tun_linux.go).
package iface

import "net"

// VnetHdrLen is the size of struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
// Every frame read or written through a Queue is preceded by one, so that GSO
// frames (up to 64 KiB) and frames with a partial checksum cross ferry intact:
// the kernel segments or completes them on transmit, as it would for its own.
const VnetHdrLen = 10

// virtio_net_hdr flags and gso types, as the dataplane needs to read them.
const (
	VnetFlagNeedsCsum = 1 // csum_start/csum_offset are valid; checksum is partial
	VnetFlagDataValid = 2

	VnetGSONone  = 0
	VnetGSOTCPv4 = 1
	VnetGSOUDP   = 3
	VnetGSOTCPv6 = 4
	VnetGSOUDPL4 = 5
	VnetGSOECN   = 0x80
)

// Queue is one worker's share of a link: its own RX and TX ring, joined with
// the link's other queues in one PACKET_FANOUT group so that a flow always
// lands on the same worker. A Queue has exactly one owner (a worker
// goroutine) and is not safe for concurrent use.
//
// The batch contract follows wireguard-go's tun.Device: the caller owns the
// buffers; offset leaves headroom in front of each frame so headers can be
// prepended in place. The virtio_net_hdr of frame i lives at
// bufs[i][offset-VnetHdrLen:offset].
type Queue interface {
	// Read puts up to len(bufs) pending frames at bufs[i][offset:], their
	// virtio_net_hdr in front of them, sets sizes[i] to the frame length
	// and returns how many it read. A queue may replace bufs[i] with a view
	// of its own memory (the frame where it landed, with offset bytes of
	// headroom, writable) instead of copying: such a view is valid until
	// the next Read on the queue, and the caller passes its own buffers
	// again each time (never a view). It never blocks: 0 means nothing is
	// pending (use Fd with poll to wait). Frames larger than the buffer or
	// truncated by the ring are dropped and counted, never returned.
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	// Write queues bufs[i][offset-VnetHdrLen:] (virtio_net_hdr then frame)
	// for transmission and flushes them to the kernel with one system call.
	// It returns how many frames were queued; the rest were dropped because
	// the TX ring was full (counted in Stats). bufs may be views from Read
	// on any queue: Write copies the frames out before it returns.
	Write(bufs [][]byte, offset int) (int, error)
	// Fd is the socket to poll for POLLIN.
	Fd() int
	// Stats returns ring-level counters (kernel drops, truncated frames, TX ring full).
	Stats() QueueStats
}

// QueueStats are counters kept by the I/O layer, below the dataplane's own.
type QueueStats struct {
	KernelDrops uint64 // tp_drops from PACKET_STATISTICS: the RX ring was full
	Truncated   uint64 // frames larger than a ring slot or the caller's buffer
	TxRingFull  uint64 // frames not sent because no TX slot was free
	NotIP       uint64 // TUN: packets that were neither IPv4 nor IPv6
	BadVnetHdr  uint64 // TUN/TAP: virtio_net_hdr with nonsense values (read, or refused by the kernel on write)
}

// Link is an interface opened for ferry: one Queue per worker plus a
// control socket for the few frames the control plane sends itself (ARP
// requests and probes).
type Link interface {
	Name() string
	Index() int // Linux ifindex
	MAC() net.HardwareAddr
	MTU() int
	Up() bool // operational state (IFF_RUNNING) as last seen
	Queue(i int) Queue
	NumQueues() int
	// SendControl transmits one complete Ethernet frame (no virtio header)
	// outside the rings. It is safe for concurrent use, and slow.
	SendControl(frame []byte) error
	Close() error
}

// IngressTaker is a Link that can keep the frames it receives from the
// kernel's own stack. TakeErr is nil when it does, or says why not.
type IngressTaker interface {
	TakeErr() error
}
