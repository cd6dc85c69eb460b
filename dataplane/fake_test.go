package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/iface"
)

// fakeLink and fakeQueue stand in for AF_PACKET ports so the pipeline is
// tested without a kernel, in the spirit of wireguard-go's tuntest.
type fakeLink struct {
	name    string
	mac     net.HardwareAddr
	mtu     int
	queues  []*fakeQueue
	control [][]byte
	down    bool // what Up reports
}

func (l *fakeLink) Name() string            { return l.name }
func (l *fakeLink) Index() int              { return 0 }
func (l *fakeLink) MAC() net.HardwareAddr   { return l.mac }
func (l *fakeLink) MTU() int                { return l.mtu }
func (l *fakeLink) Up() bool                { return !l.down }
func (l *fakeLink) Queue(i int) iface.Queue { return l.queues[i] }
func (l *fakeLink) NumQueues() int          { return len(l.queues) }
func (l *fakeLink) Close() error            { return nil }
func (l *fakeLink) SendControl(f []byte) error {
	l.control = append(l.control, append([]byte(nil), f...))
	return nil
}

type fakeQueue struct {
	in  [][]byte // frames to deliver, each with its virtio_net_hdr in front
	out [][]byte // frames written, virtio_net_hdr in front
	// keep, when set, makes Read deliver the same frames again and Write
	// discard, for allocation and speed measurements.
	keep bool
	// views, when set, makes Read hand out frames that fit a slot where
	// they "landed", as the AF_PACKET queue does: bufs[i] becomes a view
	// of one of slots, sized as that queue sizes them for a 1500-byte MTU
	// and reused by the next Read. Larger frames are copied into the
	// caller's buffer, as always without it.
	views bool
	slots [][]byte
}

// fakeMacOff is where an AF_PACKET RX slot holds the Ethernet frame
// (iface's rxMacOff).
const fakeMacOff = 140

func (q *fakeQueue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) && n < len(q.in) {
		f := q.in[n]
		if q.views && fakeMacOff-iface.VnetHdrLen+len(f) <= iface.SlotSize(1500) {
			for len(q.slots) <= n {
				q.slots = append(q.slots, make([]byte, iface.SlotSize(1500)))
			}
			s := q.slots[n]
			clear(s) // what the last Read handed out is gone
			bufs[n] = s[fakeMacOff-offset : len(s) : len(s)]
		}
		copy(bufs[n][offset-iface.VnetHdrLen:], f)
		sizes[n] = len(f) - iface.VnetHdrLen
		n++
	}
	if !q.keep {
		q.in = q.in[n:]
	}
	return n, nil
}

func (q *fakeQueue) Write(bufs [][]byte, offset int) (int, error) {
	if q.keep {
		return len(bufs), nil
	}
	for _, b := range bufs {
		q.out = append(q.out, append([]byte(nil), b[offset-iface.VnetHdrLen:]...))
	}
	return len(bufs), nil
}

func (q *fakeQueue) Fd() int                 { return -1 }
func (q *fakeQueue) Stats() iface.QueueStats { return iface.QueueStats{} }

var (
	macA  = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB  = [6]byte{2, 0, 0, 0, 0, 0xb}
	macR0 = [6]byte{2, 0, 0, 0, 1, 0}
	macR1 = [6]byte{2, 0, 0, 0, 1, 1}
	ipA   = netip.MustParseAddr("192.0.2.2")
	ipR0  = netip.MustParseAddr("192.0.2.1")
	ipB   = netip.MustParseAddr("198.51.100.2")
	ipR1  = netip.MustParseAddr("198.51.100.1")
)

// rig is a router with two fake ports: r0 192.0.2.1/24 towards host A and
// r1 198.51.100.1/24 (MTU 1300) towards host B, both hosts static neighbours.
type rig struct {
	t     *testing.T
	r     *Router
	links []*fakeLink
	w     *worker
}

func newRig(t testing.TB, mutate func(*config.Config)) *rig {
	cfg := &config.Config{
		File:      "test.toml",
		Dataplane: config.Dataplane{Workers: 1, BatchSize: 64},
		Interfaces: []config.Interface{
			{Name: "r0", Kind: "afpacket", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
			{Name: "r1", Kind: "afpacket", Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}, MTU: 1300},
		},
		Neighbors: []config.Neighbor{
			{IP: ipA, MAC: macA[:], Dev: "r0"},
			{IP: ipB, MAC: macB[:], Dev: "r1"},
		},
	}
	if mutate != nil {
		mutate(cfg)
	}
	var links []*fakeLink
	open := func(ifc config.Interface, dp config.Dataplane) (iface.Link, error) {
		mac := macR0
		if ifc.Name == "r1" {
			mac = macR1
		}
		l := &fakeLink{name: ifc.Name, mac: mac[:], mtu: 1500}
		for i := 0; i < dp.Workers; i++ {
			l.queues = append(l.queues, &fakeQueue{})
		}
		links = append(links, l)
		return l, nil
	}
	r, err := New(cfg, Options{OpenLink: open})
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := t.(*testing.T)
	return &rig{t: tt, r: r, links: links, w: r.workers[0]}
}

// inject queues frames on port pi and runs one batch.
func (g *rig) run(pi int, frames ...[]byte) {
	q := g.links[pi].queues[0]
	for _, f := range frames {
		q.in = append(q.in, append(make([]byte, iface.VnetHdrLen), f...))
	}
	for g.w.read() > 0 {
		g.w.process()
	}
}

// sent returns and forgets the frames written on port pi, without their
// virtio_net_hdr.
func (g *rig) sent(pi int) [][]byte {
	q := g.links[pi].queues[0]
	var out [][]byte
	for _, f := range q.out {
		out = append(out, f[iface.VnetHdrLen:])
	}
	q.out = nil
	return out
}

func (g *rig) drops(pi int) map[string]uint64 { return g.r.Interfaces()[pi].Drops }

// ipv4Frame builds an Ethernet frame with an IPv4 header and payload.
type pktSpec struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.Addr
	proto          byte
	ttl            byte
	df             bool
	id             uint16
	payload        []byte
	options        []byte
}

func (s pktSpec) frame() []byte {
	ihl := 20 + len(s.options)
	b := make([]byte, 14+ihl+len(s.payload))
	copy(b[0:6], s.dstMAC[:])
	copy(b[6:12], s.srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], etherTypeIPv4)
	ip := b[14:]
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(s.payload)))
	binary.BigEndian.PutUint16(ip[4:], s.id)
	if s.df {
		ip[6] = 0x40
	}
	ip[8], ip[9] = s.ttl, s.proto
	a, d := s.src.As4(), s.dst.As4()
	copy(ip[12:], a[:])
	copy(ip[16:], d[:])
	copy(ip[20:], s.options)
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:ihl], 0))
	copy(ip[ihl:], s.payload)
	return b
}

func udpPayload(n int) []byte {
	p := make([]byte, 8+n)
	binary.BigEndian.PutUint16(p[0:], 40000)
	binary.BigEndian.PutUint16(p[2:], 9)
	binary.BigEndian.PutUint16(p[4:], uint16(8+n))
	for i := 8; i < len(p); i++ {
		p[i] = byte(i)
	}
	return p
}

func echoRequest(n int) []byte {
	p := make([]byte, 8+n)
	p[0] = icmpEchoRequest
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	binary.BigEndian.PutUint16(p[6:], 1)
	for i := 8; i < len(p); i++ {
		p[i] = byte(i)
	}
	binary.BigEndian.PutUint16(p[2:], ^checksum.Checksum(p, 0))
	return p
}

func aToB(ttl byte, payload []byte) pktSpec {
	return pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipB, proto: protoUDP, ttl: ttl, payload: payload, id: 7}
}
