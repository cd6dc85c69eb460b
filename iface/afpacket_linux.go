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
// and reads them in batches without sleeping.
//
// Slots are sized for the link's MTU (2 KiB for 1500 bytes), not for a
// 64 KiB GSO frame: a fixed slot per frame means a 68 KiB slot holds a
// 64-byte frame as well, and a ring deep enough to ride out a burst of
// small frames would cost hundreds of MiB. A frame larger than its slot
// (GSO, GRO) still arrives whole: with PACKET_COPY_THRESH the kernel puts
// a truncated copy in the slot, marks it TP_STATUS_COPY and queues the
// whole frame on the socket, where Read takes it with one recvfrom into
// the caller's buffer. On the way out such a frame goes through a second,
// ring-less socket of the queue (sendto), after the ring's pending slots,
// so frames keep their order. Either way the kernel copies the big frame
// once in each direction and user space not at all.
//
// Read hands out small frames where they landed: bufs[i] becomes a view of
// the RX slot, held until the next Read on the queue, so a forwarded frame
// is copied once in user space, into its TX slot.
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
	// rxReserve (PACKET_RESERVE) puts the frame this far behind the
	// slot's headers, so a view of it has room in front for the caller's
	// headroom (an ICMP error built in place) without touching tp_status.
	rxReserve = 64
	// rxMacOff is where the kernel puts an Ethernet frame in an RX slot
	// (tpacket_rcv): TPACKET_ALIGN(tp_hdrlen(52) + 16) + reserve +
	// virtio_net_hdr - ETH_HLEN.
	rxMacOff = 80 + rxReserve + VnetHdrLen - 14
	// copyRcvBuf bounds the frames waiting on the socket's queue for
	// Read (those larger than a slot): about 60 GSO frames of 64 KiB.
	copyRcvBuf = 4 << 20

	// tpacket2_hdr field offsets
	offStatus  = 0
	offLen     = 4
	offSnapLen = 8
	offMac     = 12

	// Ring size when not configured: this many bytes per ring, so small
	// slots make deep rings (2,048 slots of 2 KiB).
	defaultRingBytes = 4 << 20
	minRingFrames    = 256
	blockSize        = 1 << 20
)

// AFPacketConfig describes a link to open.
type AFPacketConfig struct {
	Name       string
	Queues     int  // one per worker, joined in a fanout group (default 1)
	RingFrames int  // slots in each RX and TX ring (default: 4 MiB of slots, at least 256; rounded up to whole blocks)
	FrameSize  int  // bytes per slot (default: the link's MTU frame, at least 2048; see SlotSize)
	Promisc    bool // receive frames for any MAC (needed when ferry's MAC differs from the link's)
	FanoutID   uint16
	// TakeIngress keeps received frames from the kernel's own stack once
	// the rings have them (see takeIngress). Failing that is not fatal:
	// the port works, at the cost of the kernel's second pass, and
	// TakeErr reports why.
	TakeIngress bool
}

// SlotSize is the default slot for a link of this MTU: the frame with a
// VLAN tag behind the slot's headers, in whole cache lines, at least 2 KiB.
func SlotSize(mtu int) int {
	return max(2048, (rxMacOff+14+4+mtu+63)&^63)
}

// RingMemory is what one queue's rings of a link take: RX and TX, each
// frames slots of frameSize bytes in whole 1 MiB blocks.
func RingMemory(frames, frameSize int) int {
	lay, err := layout(AFPacketConfig{RingFrames: frames, FrameSize: frameSize}, 1500)
	if err != nil {
		return 0
	}
	return 2 * lay.blocks * blockSize
}

// ringLayout is the geometry both rings of a queue share.
type ringLayout struct {
	frameSize, frames, blocks int
}

func layout(cfg AFPacketConfig, mtu int) (ringLayout, error) {
	fs := cfg.FrameSize
	if fs == 0 {
		fs = SlotSize(mtu)
	}
	if fs < 2048 || fs%16 != 0 || fs > blockSize {
		return ringLayout{}, fmt.Errorf("frame size %d: want a multiple of 16 between 2048 and %d", fs, blockSize)
	}
	n := cfg.RingFrames
	if n == 0 {
		n = max(minRingFrames, defaultRingBytes/fs)
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
	lay, err := layout(cfg, ifi.MTU)
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
	big  int // ring-less socket for frames larger than a TX slot
	lay  ringLayout
	ring []byte // RX slots, then TX slots
	rx   []byte
	tx   []byte

	rxHead, txHead int
	// held RX slots, from rxHead-held, were handed out by the last Read
	// (as views or for their queued copies) and go back to the kernel at
	// the next.
	held int

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
	q := &afQueue{fd: fd, big: -1, lay: lay}
	if err := q.setup(ifi.Index, fanout, group); err != nil {
		q.close()
		return nil, err
	}
	if err := q.setupBig(ifi.Index); err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

// setupBig opens the queue's socket for frames larger than a TX slot. It
// is bound with protocol 0, so it never receives.
func (q *afQueue) setupBig(ifindex int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	q.big = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fmt.Errorf("PACKET_VNET_HDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
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
	if err := set("PACKET_RESERVE", unix.PACKET_RESERVE, rxReserve); err != nil {
		return err
	}
	// A frame larger than a slot is queued whole on the socket (see the
	// ring scheme above); the receive buffer bounds how many may wait.
	if err := set("PACKET_COPY_THRESH", unix.PACKET_COPY_THRESH, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, copyRcvBuf); err != nil {
		// Without CAP_NET_ADMIN: as much as rmem_max allows.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, copyRcvBuf)
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

// Read hands out up to len(bufs) pending frames. A frame that fit its
// slot is handed out where it landed: bufs[i] is replaced by a view of the
// slot with offset bytes of headroom in front of the frame, valid until
// the next Read on this queue. A frame larger than its slot is copied by
// the kernel into the caller's own bufs[i], which must not be such a view.
func (q *afQueue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if q.ring == nil {
		return 0, net.ErrClosed
	}
	q.release()
	n := 0
	for n < len(bufs) {
		s := q.slot(q.rx, q.rxHead)
		st := atomic.LoadUint32(status(s))
		if st&unix.TP_STATUS_USER == 0 {
			break
		}
		mac := int(u16(s, offMac))
		snap := int(u32(s, offSnapLen))
		switch {
		case st&unix.TP_STATUS_COPY != 0:
			if q.readCopy(bufs[n], offset, &sizes[n]) {
				n++
			}
		case snap < int(u32(s, offLen)) || mac < VnetHdrLen || mac+snap > len(s):
			// Larger than the slot, and the socket's queue had no room.
			q.truncated++
		case mac >= offset && offset >= VnetHdrLen:
			bufs[n] = s[mac-offset : len(s) : len(s)]
			sizes[n] = snap
			n++
		case offset+snap <= len(bufs[n]) && !q.inRing(bufs[n]):
			copy(bufs[n][offset-VnetHdrLen:offset+snap], s[mac-VnetHdrLen:mac+snap])
			sizes[n] = snap
			n++
		default:
			q.truncated++
		}
		q.held++
		q.rxHead++
		if q.rxHead == q.lay.frames {
			q.rxHead = 0
		}
	}
	return n, nil
}

// release hands the slots of the last Read back to the kernel, oldest
// first. The kernel fills slots in ring order and drops frames (counted in
// tp_drops) while the slot at its head is still held.
func (q *afQueue) release() {
	k := q.rxHead - q.held
	if k < 0 {
		k += q.lay.frames
	}
	for ; q.held > 0; q.held-- {
		atomic.StoreUint32(status(q.slot(q.rx, k)), unix.TP_STATUS_KERNEL)
		if k++; k == q.lay.frames {
			k = 0
		}
	}
}

// readCopy takes the frame the kernel queued on the socket for a slot
// marked TP_STATUS_COPY (virtio_net_hdr first, as in a slot) into
// b[offset-VnetHdrLen:]. The queue holds exactly the frames of such slots,
// in ring order, so one is always taken, even when it cannot be kept.
func (q *afQueue) readCopy(b []byte, offset int, size *int) bool {
	var dst []byte
	if offset >= VnetHdrLen && offset < len(b) && !q.inRing(b) {
		dst = b[offset-VnetHdrLen:]
	}
	var p unsafe.Pointer
	if len(dst) > 0 {
		p = unsafe.Pointer(&dst[0])
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(q.fd), uintptr(p), uintptr(len(dst)), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	if e != 0 || int(r) > len(dst) || int(r) < VnetHdrLen {
		q.truncated++
		return false
	}
	*size = int(r) - VnetHdrLen
	return true
}

// inRing reports whether b lies in the queue's rings (a view Read handed
// out), where the kernel must not be asked to copy a frame.
func (q *afQueue) inRing(b []byte) bool {
	if len(b) == 0 || len(q.ring) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	lo := uintptr(unsafe.Pointer(&q.ring[0]))
	return p >= lo && p < lo+uintptr(len(q.ring))
}

// Write queues the frames in TX slots and sends them with one system
// call; a frame larger than a slot goes out through the queue's second
// socket, after the slots filled before it, so the order holds.
func (q *afQueue) Write(bufs [][]byte, offset int) (int, error) {
	if q.ring == nil {
		return 0, net.ErrClosed
	}
	start, pending, n := q.txHead, 0, 0
	for _, b := range bufs {
		data := b[offset-VnetHdrLen:]
		if len(data) > q.lay.frameSize-txDataOff {
			if pending > 0 {
				if err := q.flush(start, pending); err != nil {
					return n - pending, err
				}
				start, pending = q.txHead, 0
			}
			ok, err := q.sendBig(data)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
			continue
		}
		s := q.slot(q.tx, q.txHead)
		st := atomic.LoadUint32(status(s))
		if st != unix.TP_STATUS_AVAILABLE && st != unix.TP_STATUS_WRONG_FORMAT {
			// The kernel still owns the next slot: the ring is full.
			q.txFull++
			continue
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
		pending++
		q.txHead++
		if q.txHead == q.lay.frames {
			q.txHead = 0
		}
	}
	if pending > 0 {
		if err := q.flush(start, pending); err != nil {
			return n - pending, err
		}
	}
	return n, nil
}

// flush has the kernel send the pending slots from start.
func (q *afQueue) flush(start, pending int) error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
		return nil
	}
	// The link is down or gone: the kernel took none of the slots, so take
	// them back rather than leave them to go out, stale, when it returns.
	for i, k := 0, start; i < pending; i++ {
		s := q.slot(q.tx, k)
		if atomic.LoadUint32(status(s)) == unix.TP_STATUS_SEND_REQUEST {
			atomic.StoreUint32(status(s), unix.TP_STATUS_AVAILABLE)
		}
		if k++; k == q.lay.frames {
			k = 0
		}
	}
	q.txHead = start
	return fmt.Errorf("afpacket send: %w", e)
}

// sendBig sends one frame (virtio_net_hdr first) through the ring-less
// socket; false means it was dropped, and counted.
func (q *afQueue) sendBig(data []byte) (bool, error) {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.big), uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		return true, nil
	case unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
		q.txFull++
		return false, nil
	case unix.EMSGSIZE, unix.EINVAL:
		// A malformed GSO header or a frame the link cannot take: this
		// frame's fault, not the port's.
		q.truncated++
		return false, nil
	}
	return false, fmt.Errorf("afpacket send: %w", e)
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
	if q.big >= 0 {
		unix.Close(q.big)
		q.big = -1
	}
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
