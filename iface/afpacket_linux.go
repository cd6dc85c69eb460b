package iface

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Ring scheme: TPACKET_V2, one RX and one TX ring per queue, in one mmap.
//
// Why V2 and not V3: a V3 ring hands a block to user space only when the
// block is full or its retire timer (>= 1 ms) fires, so at idle every ping
// waits for the timer (about 1.4 ms measured on a veth rig). V2 marks each
// frame ready as it lands and wakes poll(2) per frame, so idle latency stays
// in microseconds, while under load the worker keeps finding frames ready
// and reads them in batches without sleeping. The cost is a fixed slot per
// frame: slots are sized for a 64 KiB GSO frame, so 64-byte frames waste
// most of theirs; the ring is memory, not bandwidth.
//
// TX goes through a ring too: the worker fills slots for a whole batch and
// enters the kernel once (sendto with no data), which walks every slot
// marked SEND_REQUEST. PACKET_QDISC_BYPASS sends straight to the driver, as
// a forwarder's own qdisc would only add a lock and a queue.

const (
	tpacket2HdrLen = 32 // sizeof(struct tpacket2_hdr), TPACKET_ALIGNed
	// TX data starts here (tpacket_parse_header: tp_hdrlen - sizeof(sockaddr_ll)).
	txDataOff = tpacket2HdrLen
	// linearMax: frames up to this size go into the skb whole (see Write).
	linearMax = 2048

	// tpacket2_hdr field offsets
	offStatus  = 0
	offLen     = 4
	offSnapLen = 8
	offMac     = 12

	defaultFrameSize  = 69632 // 17 pages: a 64 KiB GSO frame, its Ethernet, virtio and tpacket headers
	defaultRingFrames = 256
	blockSize         = 1 << 20
)

// AFPacketConfig describes a link to open.
type AFPacketConfig struct {
	Name       string
	Queues     int  // one per worker, joined in a fanout group (default 1)
	RingFrames int  // slots in each RX and TX ring (default 256, rounded up to whole blocks)
	FrameSize  int  // bytes per slot (default 69632)
	Promisc    bool // receive frames for any MAC (needed when ferry's MAC differs from the link's)
	FanoutID   uint16
	// TakeIngress keeps received frames from the kernel's own stack once
	// the rings have them (see takeIngress). Failing that is not fatal:
	// the port works, at the cost of the kernel's second pass, and
	// TakeErr reports why.
	TakeIngress bool
}

// ringLayout is the geometry both rings of a queue share.
type ringLayout struct {
	frameSize, frames, blocks int
}

func layout(cfg AFPacketConfig) (ringLayout, error) {
	fs := cfg.FrameSize
	if fs == 0 {
		fs = defaultFrameSize
	}
	if fs < 2048 || fs%16 != 0 || fs > blockSize {
		return ringLayout{}, fmt.Errorf("frame size %d: want a multiple of 16 between 2048 and %d", fs, blockSize)
	}
	n := cfg.RingFrames
	if n == 0 {
		n = defaultRingFrames
	}
	perBlock := blockSize / fs
	blocks := (n + perBlock - 1) / perBlock
	return ringLayout{frameSize: fs, frames: blocks * perBlock, blocks: blocks}, nil
}

type afLink struct {
	name   string
	index  int
	mac    net.HardwareAddr
	mtu    int
	queues []*afQueue

	ctlMu sync.Mutex
	ctl   *packet.Conn
	up    atomic.Bool

	ingress io.Closer // the TCX program that keeps frames from the kernel's stack
	takeErr error
}

var _ Link = (*afLink)(nil)

// OpenAFPacket opens cfg.Queues ring sockets on the named interface, joined
// in one PACKET_FANOUT group hashed by flow, plus a control socket.
func OpenAFPacket(cfg AFPacketConfig) (Link, error) {
	ifi, err := net.InterfaceByName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("afpacket %s: %w", cfg.Name, err)
	}
	lay, err := layout(cfg)
	if err != nil {
		return nil, fmt.Errorf("afpacket %s: %w", cfg.Name, err)
	}
	if cfg.Queues < 1 {
		cfg.Queues = 1
	}
	l := &afLink{name: cfg.Name, index: ifi.Index, mac: ifi.HardwareAddr, mtu: ifi.MTU}
	l.up.Store(ifi.Flags&net.FlagRunning != 0)
	fanout := cfg.FanoutID
	if fanout == 0 {
		fanout = uint16(ifi.Index)*31 + uint16(os.Getpid())
	}
	for i := 0; i < cfg.Queues; i++ {
		q, err := openQueue(ifi, lay, cfg.Queues > 1, fanout)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("afpacket %s queue %d: %w", cfg.Name, i, err)
		}
		l.queues = append(l.queues, q)
	}
	if cfg.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(l.queues[0].fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			l.Close()
			return nil, fmt.Errorf("afpacket %s: promiscuous: %w", cfg.Name, err)
		}
	}
	if cfg.TakeIngress {
		l.ingress, l.takeErr = takeIngress(ifi.Index)
	}
	// Protocol 0: the control socket only sends, it never receives a copy
	// of the traffic.
	l.ctl, err = packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("afpacket %s: control socket: %w", cfg.Name, err)
	}
	return l, nil
}

func (l *afLink) Name() string          { return l.name }
func (l *afLink) Index() int            { return l.index }
func (l *afLink) MAC() net.HardwareAddr { return l.mac }
func (l *afLink) MTU() int              { return l.mtu }
func (l *afLink) TakeErr() error        { return l.takeErr }
func (l *afLink) Queue(i int) Queue     { return l.queues[i] }
func (l *afLink) NumQueues() int        { return len(l.queues) }

// Up asks the kernel for the link's operational state. It is a netlink
// round trip: call it from the control plane, not per packet.
func (l *afLink) Up() bool {
	ifi, err := net.InterfaceByIndex(l.index)
	up := err == nil && ifi.Name == l.name && ifi.Flags&net.FlagRunning != 0
	l.up.Store(up)
	return up
}

func (l *afLink) SendControl(frame []byte) error {
	if len(frame) < 14 {
		return errors.New("frame shorter than an Ethernet header")
	}
	l.ctlMu.Lock()
	defer l.ctlMu.Unlock()
	_, err := l.ctl.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])})
	return err
}

func (l *afLink) Close() error {
	var errs []error
	for _, q := range l.queues {
		errs = append(errs, q.close())
	}
	l.queues = nil
	if l.ingress != nil {
		errs = append(errs, l.ingress.Close())
		l.ingress = nil
	}
	if l.ctl != nil {
		errs = append(errs, l.ctl.Close())
		l.ctl = nil
	}
	return errors.Join(errs...)
}

type afQueue struct {
	fd   int
	lay  ringLayout
	ring []byte // RX slots, then TX slots
	rx   []byte
	tx   []byte

	rxHead, txHead int

	kernelDrops uint64
	truncated   uint64
	txFull      uint64
}

var _ Queue = (*afQueue)(nil)

func openQueue(ifi *net.Interface, lay ringLayout, fanout bool, group uint16) (*afQueue, error) {
	// Ring sockets are opened with socket(2), not through mdlayher/packet,
	// on purpose: packet.Conn registers its socket with the Go runtime's
	// epoll, and a socket with a waiter wakes it on every completed TX
	// frame and every received one (sock_def_write_space/readable). On
	// this rig that was 22% of the router's core at 64-byte rates. Workers
	// wait in poll(2) themselves, so nothing needs the registration.
	//
	// Protocol 0: nothing is received until the rings exist and the socket
	// is bound again to ETH_P_ALL.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	q := &afQueue{fd: fd, lay: lay}
	if err := q.setup(ifi.Index, fanout, group); err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

func (q *afQueue) setup(ifindex int, fanout bool, group uint16) error {
	fd := q.fd
	set := func(name string, opt, v int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, opt, v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if err := set("PACKET_VERSION", unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return err
	}
	// Must precede the rings: the kernel fixes the frame layout with them.
	if err := set("PACKET_VNET_HDR", unix.PACKET_VNET_HDR, 1); err != nil {
		return err
	}
	// A malformed TX slot is skipped instead of stalling the ring.
	if err := set("PACKET_LOSS", unix.PACKET_LOSS, 1); err != nil {
		return err
	}
	if err := set("PACKET_QDISC_BYPASS", unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return err
	}
	// Never read back ferry's own transmissions (or the kernel's) on this port.
	if err := set("PACKET_IGNORE_OUTGOING", unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return err
	}
	req := unix.TpacketReq{
		Block_size: blockSize,
		Block_nr:   uint32(q.lay.blocks),
		Frame_size: uint32(q.lay.frameSize),
		Frame_nr:   uint32(q.lay.frames),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_TX_RING: %w", err)
	}
	size := 2 * q.lay.blocks * blockSize
	ring, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	q.ring = ring
	q.rx = ring[:size/2]
	q.tx = ring[size/2:]
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if fanout {
		// Hash by flow so a flow stays on one worker and is never
		// reordered. No DEFRAG flag: it would reassemble fragments in the
		// kernel, and a router forwards fragments as they come; the flow
		// hash of any fragment covers addresses only, so they agree.
		v := int(group) | unix.PACKET_FANOUT_HASH<<16
		if err := set("PACKET_FANOUT", unix.PACKET_FANOUT, v); err != nil {
			return err
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// slot returns the n-th frame slot of ring r. Frames never straddle
// blocks, and blockSize is a multiple of the frame size's block fill.
func (q *afQueue) slot(r []byte, n int) []byte {
	perBlock := blockSize / q.lay.frameSize
	off := (n/perBlock)*blockSize + (n%perBlock)*q.lay.frameSize
	return r[off : off+q.lay.frameSize]
}

func status(s []byte) *uint32 { return (*uint32)(unsafe.Pointer(&s[offStatus])) }

func u32(s []byte, off int) uint32 { return *(*uint32)(unsafe.Pointer(&s[off])) }
func u16(s []byte, off int) uint16 { return *(*uint16)(unsafe.Pointer(&s[off])) }

func (q *afQueue) Fd() int { return q.fd }

func (q *afQueue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if q.ring == nil {
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(bufs) {
		s := q.slot(q.rx, q.rxHead)
		st := atomic.LoadUint32(status(s))
		if st&unix.TP_STATUS_USER == 0 {
			break
		}
		mac := int(u16(s, offMac))
		snap := int(u32(s, offSnapLen))
		if snap < int(u32(s, offLen)) || offset+snap > len(bufs[n]) || mac < VnetHdrLen || mac+snap > len(s) {
			q.truncated++
		} else {
			copy(bufs[n][offset-VnetHdrLen:offset+snap], s[mac-VnetHdrLen:mac+snap])
			sizes[n] = snap
			n++
		}
		// Hand the slot back only after the copy: the store is the release.
		atomic.StoreUint32(status(s), unix.TP_STATUS_KERNEL)
		q.rxHead++
		if q.rxHead == q.lay.frames {
			q.rxHead = 0
		}
	}
	return n, nil
}

func (q *afQueue) Write(bufs [][]byte, offset int) (int, error) {
	if q.ring == nil {
		return 0, net.ErrClosed
	}
	start := q.txHead
	n := 0
	for _, b := range bufs {
		data := b[offset-VnetHdrLen:]
		if len(data) > q.lay.frameSize-txDataOff {
			q.truncated++
			continue
		}
		s := q.slot(q.tx, q.txHead)
		st := atomic.LoadUint32(status(s))
		if st != unix.TP_STATUS_AVAILABLE && st != unix.TP_STATUS_WRONG_FORMAT {
			break // the kernel still owns the next slot: the ring is full
		}
		copy(s[txDataOff:], data)
		if f := len(data) - VnetHdrLen; data[1] == VnetGSONone && f <= linearMax {
			// hdr_len is how much the kernel copies into the skb's own
			// buffer; the rest it attaches as fragments of the ring's
			// pages, which veth (and any path that keeps the skb past
			// send) must then copy into freshly allocated pages: a page
			// allocation per small frame. Copying the whole frame is far
			// cheaper.
			binary.LittleEndian.PutUint16(s[txDataOff+2:], uint16(f))
		}
		// With PACKET_VNET_HDR, tp_len counts the virtio header too.
		*(*uint32)(unsafe.Pointer(&s[offLen])) = uint32(len(data))
		atomic.StoreUint32(status(s), unix.TP_STATUS_SEND_REQUEST)
		n++
		q.txHead++
		if q.txHead == q.lay.frames {
			q.txHead = 0
		}
	}
	q.txFull += uint64(len(bufs) - n)
	if n == 0 {
		return 0, nil
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
		return n, nil
	}
	// The link is down or gone: the kernel took none of the slots, so take
	// them back rather than leave them to go out, stale, when it returns.
	for i, k := 0, start; i < n; i++ {
		s := q.slot(q.tx, k)
		if atomic.LoadUint32(status(s)) == unix.TP_STATUS_SEND_REQUEST {
			atomic.StoreUint32(status(s), unix.TP_STATUS_AVAILABLE)
		}
		if k++; k == q.lay.frames {
			k = 0
		}
	}
	q.txHead = start
	return 0, fmt.Errorf("afpacket send: %w", e)
}

// Stats folds the kernel's PACKET_STATISTICS (which reset on every read)
// into running totals. Call it from the queue's owner.
func (q *afQueue) Stats() QueueStats {
	if q.fd >= 0 && q.ring != nil {
		if st, err := unix.GetsockoptTpacketStats(q.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			q.kernelDrops += uint64(st.Drops)
		}
	}
	return QueueStats{KernelDrops: q.kernelDrops, Truncated: q.truncated, TxRingFull: q.txFull}
}

func (q *afQueue) close() error {
	if q.ring != nil {
		unix.Munmap(q.ring)
		q.ring, q.rx, q.tx = nil, nil, nil
	}
	if q.fd >= 0 {
		err := unix.Close(q.fd)
		q.fd = -1
		return err
	}
	return nil
}

// Poll waits until one of fds is ready or timeout passes, retrying EINTR.
func Poll(fds []unix.PollFd, timeout time.Duration) (int, error) {
	ms := int(timeout / time.Millisecond)
	for {
		n, err := unix.Poll(fds, ms)
		if err != unix.EINTR {
			return n, err
		}
	}
}
