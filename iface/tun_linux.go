package iface

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
)

// TUN and TAP ports.
//
// water creates the device (or attaches to an existing persistent one) and
// sets its owner, group and persistence; that is all it does for ferry.
// water knows neither IFF_VNET_HDR nor offloads, and IFF_VNET_HDR can only
// be chosen when a file descriptor attaches to the device (TUNSETIFF
// refuses a second call on an attached descriptor). So OpenTUN has water
// make the device persistent, closes water's descriptor, and attaches one
// descriptor per queue itself through /dev/net/tun with IFF_NO_PI,
// IFF_VNET_HDR and IFF_MULTI_QUEUE. On the first queue it sets
// TUNSETOFFLOAD (checksum, TSO4, TSO6 and, where the kernel has it, USO),
// so the kernel hands ferry GSO super-packets and packets with partial
// checksums, as an AF_PACKET ring with PACKET_VNET_HDR does. A device
// ferry created is made non-persistent again, so it goes when ferryd does.
//
// The queue descriptors are ferry's own (unix.Open, not os.File), so the
// Go runtime's netpoller never sees them: workers poll them, as they poll
// the ring sockets. The kernel spreads flows over the queues (tun's flow
// steering), so a flow stays on one worker.
//
// A TUN queue presents every packet behind a 14-byte Ethernet header it
// writes itself (destination: the port's MAC; type from the IP version),
// and strips it on the way out, moving csum_start and hdr_len of the
// virtio_net_hdr by 14 bytes each way. The pipeline thus sees one frame
// format on every port and needs only to skip neighbour resolution on a
// layer-3 port (Link.Layer3). A TAP queue passes Ethernet frames as they
// are.
//
// If the device is deleted, reads and writes fail (EBADFD) and the
// workers retire the port; Reattach attaches the same descriptors to a
// device of the same name once it exists again, so the workers' poll sets
// stay valid.

// tun offload flags (include/uapi/linux/if_tun.h); x/sys/unix lacks them.
const (
	tunFCsum  = 0x01
	tunFTSO4  = 0x02
	tunFTSO6  = 0x04
	tunFTSOEC = 0x08
	tunFUSO4  = 0x20
	tunFUSO6  = 0x40

	ethLen = 14
)

// TUNConfig describes a TUN or TAP device to create or attach to.
type TUNConfig struct {
	Name   string
	TAP    bool // layer 2 (IFF_TAP); default layer 3 (IFF_TUN)
	Queues int  // one per worker (default 1)
	MTU    int  // set on the device when > 0
	// Owner and Group, when >= 0, may use the device without privileges
	// (TUNSETOWNER, TUNSETGROUP). Default -1: unchanged.
	Owner, Group int
	// MAC is ferry's address on the link: the source of its frames on a
	// TAP, the destination of the Ethernet header a TUN queue puts in
	// front of each packet. Nil: a random locally administered one.
	MAC net.HardwareAddr
}

type tunLink struct {
	cfg    TUNConfig
	mac    net.HardwareAddr
	mtu    int
	index  atomic.Int32
	flags  uint16 // TUNSETIFF flags of every queue
	queues []*tunQueue

	ctlMu  sync.Mutex
	ctlBuf []byte // SendControl's frame, virtio header first
}

var _ Link = (*tunLink)(nil)

// Layer3er is a Link without a link layer (TUN): the pipeline resolves no
// neighbours on it; frames still carry an Ethernet header in ferry.
type Layer3er interface{ Layer3() bool }

// Reattacher is a Link that can attach to its device again after the
// device was deleted and re-created (TUN, TAP).
type Reattacher interface{ Reattach() error }

// OpenTUN creates (or attaches to) a TUN or TAP device and attaches
// cfg.Queues queues to it.
func OpenTUN(cfg TUNConfig) (Link, error) {
	if cfg.Queues < 1 {
		cfg.Queues = 1
	}
	kind := "tun"
	if cfg.TAP {
		kind = "tap"
	}
	fail := func(err error) (Link, error) { return nil, fmt.Errorf("%s %s: %w", kind, cfg.Name, err) }
	l := &tunLink{cfg: cfg, mac: cfg.MAC, ctlBuf: make([]byte, VnetHdrLen+65536)}
	if l.mac == nil {
		l.mac = randomMAC()
	}
	_, err := net.InterfaceByName(cfg.Name)
	existed := err == nil
	wc := water.Config{DeviceType: water.TUN}
	if cfg.TAP {
		wc.DeviceType = water.TAP
	}
	wc.Name, wc.Persist, wc.MultiQueue = cfg.Name, true, true
	if cfg.Owner >= 0 && cfg.Group >= 0 {
		// water sets both or neither; one alone is set below.
		wc.Permissions = &water.DevicePermissions{Owner: uint(cfg.Owner), Group: uint(cfg.Group)}
	}
	w, err := water.New(wc)
	if err != nil && existed && errors.Is(err, unix.EINVAL) {
		// An existing single-queue device (or one of the other kind).
		wc.MultiQueue = false
		w, err = water.New(wc)
	}
	if err != nil {
		return fail(fmt.Errorf("create or attach: %w", err))
	}
	w.Close()
	// From here a failure must not leave behind a device ferry created
	// persistent.
	undo := func(err error) (Link, error) {
		l.Close()
		if !existed {
			removeTUN(cfg.Name, cfg.TAP)
		}
		return fail(err)
	}
	multi := wc.MultiQueue
	if !multi && cfg.Queues > 1 {
		return fail(fmt.Errorf("the device is single-queue and there are %d workers: re-create it with `ip tuntap add dev %s mode %s multi_queue`", cfg.Queues, cfg.Name, kind))
	}
	l.flags = unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_TUN
	if cfg.TAP {
		l.flags = unix.IFF_NO_PI | unix.IFF_VNET_HDR | unix.IFF_TAP
	}
	if multi {
		l.flags |= unix.IFF_MULTI_QUEUE
	}
	for i := 0; i < cfg.Queues; i++ {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return undo(err)
		}
		l.queues = append(l.queues, &tunQueue{fd: fd, l3: !cfg.TAP, mac: [6]byte(l.mac)})
	}
	if err := l.attach(); err != nil {
		return undo(err)
	}
	if wc.Permissions == nil && cfg.Owner >= 0 {
		if err := ioctlInt(l.queues[0].fd, unix.TUNSETOWNER, cfg.Owner); err != nil {
			return undo(fmt.Errorf("TUNSETOWNER: %w", err))
		}
	}
	if wc.Permissions == nil && cfg.Group >= 0 {
		if err := ioctlInt(l.queues[0].fd, unix.TUNSETGROUP, cfg.Group); err != nil {
			return undo(fmt.Errorf("TUNSETGROUP: %w", err))
		}
	}
	if !existed {
		// Persistent only while water's descriptor was the only one.
		if err := ioctlInt(l.queues[0].fd, unix.TUNSETPERSIST, 0); err != nil {
			return undo(fmt.Errorf("TUNSETPERSIST: %w", err))
		}
	}
	return l, nil
}

// attach attaches every queue's descriptor to the device of the link's
// name, then sets offloads, the MTU and the link up.
func (l *tunLink) attach() error {
	for i, q := range l.queues {
		var req [unix.IFNAMSIZ + 64]byte
		copy(req[:], l.cfg.Name)
		binary.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], l.flags)
		if err := ioctlPtr(q.fd, unix.TUNSETIFF, unsafe.Pointer(&req[0])); err != nil && err != unix.EEXIST {
			return fmt.Errorf("queue %d: TUNSETIFF: %w", i, err)
		}
	}
	fd := l.queues[0].fd
	sz := int32(VnetHdrLen)
	if err := ioctlPtr(fd, unix.TUNSETVNETHDRSZ, unsafe.Pointer(&sz)); err != nil {
		return fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	off := tunFCsum | tunFTSO4 | tunFTSO6 | tunFTSOEC
	if err := ioctlInt(fd, unix.TUNSETOFFLOAD, off|tunFUSO4|tunFUSO6); err != nil {
		// Before Linux 6.2 there is no USO.
		if err := ioctlInt(fd, unix.TUNSETOFFLOAD, off); err != nil {
			return fmt.Errorf("TUNSETOFFLOAD: %w", err)
		}
	}
	ifi, err := net.InterfaceByName(l.cfg.Name)
	if err != nil {
		return err
	}
	l.index.Store(int32(ifi.Index))
	l.mtu = ifi.MTU
	if l.cfg.MTU > 0 && l.cfg.MTU != ifi.MTU {
		if err := setMTU(l.cfg.Name, l.cfg.MTU); err != nil {
			return fmt.Errorf("mtu %d: %w", l.cfg.MTU, err)
		}
		l.mtu = l.cfg.MTU
	}
	if err := setUp(l.cfg.Name); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// removeTUN deletes a persistent device with no queues attached: attach,
// clear persistence, detach.
func removeTUN(name string, tap bool) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	flags := uint16(unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE | unix.IFF_TUN)
	if tap {
		flags = unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE | unix.IFF_TAP
	}
	binary.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], flags)
	if ioctlPtr(fd, unix.TUNSETIFF, unsafe.Pointer(&req[0])) == nil {
		ioctlInt(fd, unix.TUNSETPERSIST, 0)
	}
}

// Reattach attaches the queues to the device again: a no-op while they
// are attached, an error while the device does not exist.
func (l *tunLink) Reattach() error {
	// TUNSETIFF on a name that does not exist would create the device:
	// ferry re-attaches to one that was re-created, it does not re-create
	// one that was deleted.
	if _, err := net.InterfaceByName(l.cfg.Name); err != nil {
		return err
	}
	return l.attach()
}

func (l *tunLink) Name() string          { return l.cfg.Name }
func (l *tunLink) Index() int            { return int(l.index.Load()) }
func (l *tunLink) MAC() net.HardwareAddr { return l.mac }
func (l *tunLink) MTU() int              { return l.mtu }
func (l *tunLink) Queue(i int) Queue     { return l.queues[i] }
func (l *tunLink) NumQueues() int        { return len(l.queues) }
func (l *tunLink) Layer3() bool          { return !l.cfg.TAP }

// Up reports whether the queues are attached to a device that is up and
// running. A netlink round trip: for the control plane, not per packet.
func (l *tunLink) Up() bool {
	if len(l.queues) == 0 {
		return false
	}
	var req [unix.IFNAMSIZ + 64]byte
	if ioctlPtr(l.queues[0].fd, unix.TUNGETIFF, unsafe.Pointer(&req[0])) != nil {
		return false // detached: the device was deleted
	}
	ifi, err := net.InterfaceByName(l.cfg.Name)
	return err == nil && ifi.Flags&net.FlagRunning != 0 && ifi.Flags&net.FlagUp != 0
}

// SendControl writes one Ethernet frame (ARP, Neighbor Discovery, router
// advertisements) through queue 0; on a TUN only its IP packet goes, and
// ARP is not sent at all.
func (l *tunLink) SendControl(frame []byte) error {
	if len(frame) < ethLen {
		return errors.New("frame shorter than an Ethernet header")
	}
	l.ctlMu.Lock()
	defer l.ctlMu.Unlock()
	if len(l.queues) == 0 {
		return net.ErrClosed
	}
	if l.Layer3() {
		if et := binary.BigEndian.Uint16(frame[12:]); et != 0x0800 && et != 0x86dd {
			return nil
		}
		frame = frame[ethLen:]
	}
	if len(frame) > len(l.ctlBuf)-VnetHdrLen {
		return errors.New("frame too big")
	}
	clear(l.ctlBuf[:VnetHdrLen])
	n := copy(l.ctlBuf[VnetHdrLen:], frame)
	_, err := unix.Write(l.queues[0].fd, l.ctlBuf[:VnetHdrLen+n])
	return err
}

func (l *tunLink) Close() error {
	l.ctlMu.Lock()
	defer l.ctlMu.Unlock()
	var errs []error
	for _, q := range l.queues {
		errs = append(errs, q.close())
	}
	l.queues = nil
	return errors.Join(errs...)
}

func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m)
	m[0] = m[0]&^1 | 2 // unicast, locally administered
	return m
}

func ioctlInt(fd int, req uint, v int) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(v))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
	if e != 0 {
		return e
	}
	return nil
}

func setMTU(name string, mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
}

func setUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
