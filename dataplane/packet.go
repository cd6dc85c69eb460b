package dataplane

import (
	"encoding/binary"

	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/fib"
	"github.com/ferry-router/ferry/iface"
)

// Headroom is the space kept in front of every received frame. The
// virtio_net_hdr sits just before the frame; the rest lets an ICMP error be
// built in place in front of the packet it quotes (new Ethernet, IPv4 and
// ICMP headers: 42 bytes) without copying the quote.
const Headroom = 64

const (
	ethHdrLen  = 14
	ipv4MinHdr = 20

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
)

// Packet is one frame in a worker's batch, a view over a buffer the worker
// owns. Headers are read and written in place; nothing here is copied.
type Packet struct {
	buf []byte // whole buffer: Headroom, then the frame
	off int    // start of the Ethernet header; virtio_net_hdr at off-VnetHdrLen
	n   int    // frame length from off
	l3  int    // start of the IPv4 or IPv6 header
	l4  int    // IPv6: start of the upper-layer header, after the extension headers

	next  stage // the next stage that must see this packet (stages only move forward)
	drop  Drop  // why, once next == stageDone without being sent
	flags pktFlags

	in   int      // ingress port
	out  int      // egress port, set by route
	mark uint32   // fwmark: set by hooks, matched by policy rules
	nh   uint32   // IPv4 next hop
	nh6  [16]byte // IPv6 next hop (flagIPv6)
	hop  *fib.NextHop

	proto uint8 // IPv6: upper-layer protocol, found by input6

	// Connection tracking and filter state (conntrack.go, filter.go), only
	// while a ruleset is loaded.
	cs    *ctSlot         // this slot's scratch entry and filter fields
	ct    *conntrack.Conn // the packet's connection; cs.scratch while flagCtNew
	ctDir conntrack.Dir

	spare int // index in the worker's spare pool (spares only)
	// own is the buffer the worker gave this packet (bufSize bytes). buf
	// is own, or a view of an RX ring slot that Read handed out, which
	// holds the frame and little more (worker.read).
	own []byte
}

type pktFlags uint8

const (
	// flagLocalOrigin: ferry built this packet (echo reply, ICMP error, ARP);
	// it skips the forward hook and its TTL is not decremented.
	flagLocalOrigin pktFlags = 1 << iota
	// flagMACSet: the destination MAC is already in place (ARP replies).
	flagMACSet
	// flagSpare: the buffer comes from the worker's spare pool.
	flagSpare
	// flagOptions: the header carries options that input checked.
	flagOptions
	// flagSourceRoute: a loose or strict source route (never redirected).
	flagSourceRoute
	// flagSRHit: ferry took the destination from the source route; forward
	// records its egress address in the slot it came from.
	flagSRHit
	// flagIPv6: an IPv6 packet; stages that handle both families dispatch
	// on it to their *6 counterparts.
	flagIPv6
	// flagCtNew: the packet starts a flow whose entry (cs.scratch) is not
	// in the table yet; confirm puts it there.
	flagCtNew
)

// Frame is the link-layer frame.
func (p *Packet) Frame() []byte { return p.buf[p.off : p.off+p.n] }

// IP is the IPv4 or IPv6 packet, header first, up to the end of the frame.
func (p *Packet) IP() []byte { return p.buf[p.l3 : p.off+p.n] }

// IsIPv6 reports whether the packet is IPv6 (IP is then an IPv6 packet,
// from input on). Hooks see both families and must check it before reading
// an IPv4 header.
func (p *Packet) IsIPv6() bool { return p.flags&flagIPv6 != 0 }

// InPort and OutPort are ferry port indexes (the order of [[interface]] in
// the config). OutPort is valid after the route stage.
func (p *Packet) InPort() int  { return p.in }
func (p *Packet) OutPort() int { return p.out }

// Drop takes the packet out of the pipeline, counted under reason.
func (p *Packet) Drop(reason Drop) {
	p.next = stageDone
	p.drop = reason
}

// Alive reports whether the packet is still headed for transmission.
func (p *Packet) Alive() bool { return p.next != stageDone }

func (p *Packet) vnet() []byte { return p.buf[p.off-iface.VnetHdrLen : p.off] }

func (p *Packet) gsoType() uint8 { return p.buf[p.off-iface.VnetHdrLen+1] }

func (p *Packet) gsoSize() int {
	return int(binary.LittleEndian.Uint16(p.buf[p.off-iface.VnetHdrLen+4:]))
}

func (p *Packet) needsCsum() bool {
	return p.buf[p.off-iface.VnetHdrLen]&iface.VnetFlagNeedsCsum != 0
}

// setFrame places a frame built by ferry at off with length n, with a
// zeroed virtio_net_hdr: the frame carries complete checksums and no GSO.
func (p *Packet) setFrame(off, n int) {
	p.off, p.n, p.l3 = off, n, off+ethHdrLen
	clear(p.buf[off-iface.VnetHdrLen : off])
}

func (p *Packet) etherType() uint16 { return binary.BigEndian.Uint16(p.buf[p.off+12:]) }

func (p *Packet) dstMAC() []byte { return p.buf[p.off : p.off+6] }
func (p *Packet) srcMAC() []byte { return p.buf[p.off+6 : p.off+12] }
