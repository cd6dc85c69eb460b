package iface

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/internal/lab"
)

// tunT creates a TUN (TAP) device "tun0" with q queues in a fresh
// namespace; the kernel there has 192.0.2.2/24 on it, ferry's side is
// 192.0.2.1.
func tunT(t *testing.T, tap bool, q int) (Link, *lab.Netns) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and /dev/net/tun")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	ns := lab.NewT(t).MustNetns("t")
	ns.MustRun("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	var lk Link
	if err := ns.Do(func() (err error) {
		lk, err = OpenTUN(TUNConfig{Name: "tun0", TAP: tap, Queues: q, MTU: 1400, Owner: -1, Group: -1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	ns.MustRun("ip", "addr", "add", "192.0.2.2/24", "dev", "tun0")
	if tap {
		ns.MustRun("ip", "neigh", "add", "192.0.2.1", "lladdr", lk.MAC().String(), "dev", "tun0")
	}
	return lk, ns
}

// echo builds an ICMP echo request 192.0.2.1 -> 192.0.2.2 behind a zeroed
// virtio_net_hdr and an Ethernet header to dst.
func echo(dst []byte, seq uint16) []byte {
	b := make([]byte, VnetHdrLen+14+28)
	e := b[VnetHdrLen:]
	copy(e[0:6], dst)
	binary.BigEndian.PutUint16(e[12:], 0x0800)
	ip := e[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 28)
	ip[8], ip[9] = 64, 1
	copy(ip[12:], []byte{192, 0, 2, 1})
	copy(ip[16:], []byte{192, 0, 2, 2})
	binary.BigEndian.PutUint16(ip[10:], ^checksum.Checksum(ip[:20], 0))
	ic := ip[20:]
	ic[0] = 8
	binary.BigEndian.PutUint16(ic[6:], seq)
	binary.BigEndian.PutUint16(ic[2:], ^checksum.Checksum(ic, 0))
	return b
}

// readOne waits for a frame on any queue of l.
func readOne(t *testing.T, l Link, want func(f []byte) bool) []byte {
	t.Helper()
	bufs := [][]byte{make([]byte, 128+65536)}
	sizes := []int{0}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for i := 0; i < l.NumQueues(); i++ {
			n, err := l.Queue(i).Read(bufs, sizes, 128)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if n == 1 && want(bufs[0][128:128+sizes[0]]) {
				return bufs[0][128-VnetHdrLen : 128+sizes[0]]
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no frame")
	return nil
}

// upIn asks l.Up from inside ns, where its device is.
func upIn(ns *lab.Netns, l Link) bool {
	up := false
	ns.Do(func() error { up = l.Up(); return nil })
	return up
}

func isEchoReply(f []byte) bool {
	return len(f) >= 14+28 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[14+9] == 1 && f[14+20] == 0
}

func TestTUNEchoThroughKernel(t *testing.T) {
	for _, tap := range []bool{false, true} {
		name := map[bool]string{false: "tun", true: "tap"}[tap]
		t.Run(name, func(t *testing.T) {
			l, ns := tunT(t, tap, 2)
			if !upIn(ns, l) {
				t.Error("link not up")
			}
			if l.MTU() != 1400 {
				t.Errorf("MTU %d, want 1400", l.MTU())
			}
			if _, ok := l.(Layer3er); !ok || l.(Layer3er).Layer3() == tap {
				t.Error("Layer3 wrong")
			}
			e := echo(l.MAC(), 1)
			if tap {
				copy(e[VnetHdrLen:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				copy(e[VnetHdrLen+6:], l.MAC())
			}
			if n, err := l.Queue(0).Write([][]byte{e}, VnetHdrLen); n != 1 || err != nil {
				t.Fatalf("write: %d %v", n, err)
			}
			f := readOne(t, l, isEchoReply)
			if tap {
				return
			}
			if [6]byte(f[VnetHdrLen:]) != [6]byte(l.MAC()) {
				t.Errorf("destination MAC %x, want the port's %s", f[VnetHdrLen:VnetHdrLen+6], l.MAC())
			}
			_ = ns
		})
	}
}

func TestTUNZeroAllocs(t *testing.T) {
	l, _ := tunT(t, false, 1)
	q := l.Queue(0)
	out := [][]byte{echo(l.MAC(), 1)}
	bufs := [][]byte{make([]byte, 128+2048)}
	sizes := []int{0}
	allocs := testing.AllocsPerRun(200, func() {
		q.Write(out, VnetHdrLen)
		for i := 0; i < 1000; i++ {
			if n, _ := q.Read(bufs, sizes, 128); n > 0 {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per Write+Read", allocs)
	}
}

// TestTUNPartialChecksumShifted: a datagram the kernel routes into the
// TUN comes with its checksum left partial (TUNSETOFFLOAD took), and
// csum_start counts the Ethernet header the queue put in front.
func TestTUNPartialChecksumShifted(t *testing.T) {
	l, ns := tunT(t, false, 1)
	ns.MustRun("ip", "route", "add", "198.51.100.0/24", "dev", "tun0")
	ns.MustRun("sh", "-c", "echo hello | socat -u - UDP4-SENDTO:198.51.100.2:9")
	f := readOne(t, l, func(f []byte) bool { return len(f) > 14+20 && f[14+9] == 17 })
	h := f[:VnetHdrLen]
	if h[0]&VnetFlagNeedsCsum == 0 {
		t.Fatalf("checksum not partial: %x (offloads not set?)", h)
	}
	if start := int(binary.LittleEndian.Uint16(h[6:])); start != 14+20 {
		t.Errorf("csum_start %d, want 34 (behind the Ethernet header)", start)
	}
	if !ValidVnetHdr(h, f[VnetHdrLen:]) {
		t.Errorf("invalid header %x", h)
	}
}

func TestTUNDeletedAndRecreated(t *testing.T) {
	l, ns := tunT(t, false, 2)
	ns.MustRun("ip", "link", "del", "tun0")
	time.Sleep(50 * time.Millisecond)
	if upIn(ns, l) {
		t.Error("deleted device reports up")
	}
	bufs := [][]byte{make([]byte, 2048)}
	if _, err := l.Queue(0).Read(bufs, []int{0}, 128); err == nil {
		t.Error("read on a deleted device: no error")
	}
	if n, err := l.Queue(1).Write([][]byte{echo(l.MAC(), 1)}, VnetHdrLen); n != 0 || err == nil {
		t.Errorf("write on a deleted device: %d, %v", n, err)
	}
	r := l.(Reattacher)
	if err := ns.Do(r.Reattach); err == nil {
		t.Error("reattached to a device that does not exist")
	}
	ns.MustRun("ip", "tuntap", "add", "dev", "tun0", "mode", "tun", "multi_queue")
	if err := ns.Do(r.Reattach); err != nil {
		t.Fatal(err)
	}
	ns.MustRun("ip", "addr", "add", "192.0.2.2/24", "dev", "tun0")
	if !upIn(ns, l) {
		t.Error("re-attached device not up")
	}
	if l.MTU() != 1400 {
		t.Errorf("MTU %d after re-attach", l.MTU())
	}
	if n, err := l.Queue(1).Write([][]byte{echo(l.MAC(), 2)}, VnetHdrLen); n != 1 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	readOne(t, l, isEchoReply)
}

func TestValidVnetHdr(t *testing.T) {
	frame := make([]byte, 100)
	hdr := func(flags, gso uint8, hdrLen, gsoSize, start, off uint16) []byte {
		h := make([]byte, VnetHdrLen)
		h[0], h[1] = flags, gso
		binary.LittleEndian.PutUint16(h[2:], hdrLen)
		binary.LittleEndian.PutUint16(h[4:], gsoSize)
		binary.LittleEndian.PutUint16(h[6:], start)
		binary.LittleEndian.PutUint16(h[8:], off)
		return h
	}
	for _, c := range []struct {
		name string
		h    []byte
		ok   bool
	}{
		{"zero", hdr(0, 0, 0, 0, 0, 0), true},
		{"partial", hdr(1, 0, 0, 0, 34, 16), true},
		{"csum past end", hdr(1, 0, 0, 0, 90, 16), false},
		{"tso", hdr(1, VnetGSOTCPv4, 54, 1448, 34, 16), true},
		{"tso ecn", hdr(1, VnetGSOTCPv4|VnetGSOECN, 54, 1448, 34, 16), true},
		{"gso size 0", hdr(1, VnetGSOTCPv4, 54, 0, 34, 16), false},
		{"hdr_len past end", hdr(1, VnetGSOTCPv6, 200, 1448, 34, 16), false},
		{"unknown gso", hdr(1, 7, 54, 1448, 34, 16), false},
	} {
		if got := ValidVnetHdr(c.h, frame); got != c.ok {
			t.Errorf("%s: %v, want %v", c.name, got, c.ok)
		}
	}
}

func FuzzValidVnetHdr(f *testing.F) {
	f.Add(make([]byte, VnetHdrLen), 60)
	f.Fuzz(func(t *testing.T, h []byte, n int) {
		if len(h) < VnetHdrLen || n < 0 || n > 1<<16 {
			return
		}
		frame := make([]byte, n)
		if ValidVnetHdr(h, frame) && h[0]&VnetFlagNeedsCsum != 0 {
			start := int(binary.LittleEndian.Uint16(h[6:])) + int(binary.LittleEndian.Uint16(h[8:]))
			_ = frame[start+1] // must be inside
		}
	})
}

// TestTUNBadInputCounted: a packet that is not IP (sent into the TUN by a
// packet socket on the kernel's side) is dropped and counted by Read; a
// frame whose virtio_net_hdr the kernel refuses is counted by Write, and
// neither is an error of the port.
func TestTUNBadInputCounted(t *testing.T) {
	l, ns := tunT(t, false, 1)
	q := l.Queue(0)
	if err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("tun0")
		if err != nil {
			return err
		}
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)}
		return unix.Sendto(fd, []byte{0x00, 0x01, 0x02, 0x03}, 0, to)
	}); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 2048)}
	deadline := time.Now().Add(2 * time.Second)
	for q.Stats().NotIP == 0 && time.Now().Before(deadline) {
		if n, err := q.Read(bufs, []int{0}, 128); n != 0 || err != nil {
			t.Fatalf("read returned %d, %v for a non-IP packet", n, err)
		}
		time.Sleep(time.Millisecond)
	}
	if q.Stats().NotIP != 1 {
		t.Errorf("not-IP packets counted: %d, want 1", q.Stats().NotIP)
	}

	bad := echo(l.MAC(), 1)
	bad[0], bad[1] = VnetFlagNeedsCsum, VnetGSOTCPv4 // GSO with gso_size 0 and an ICMP payload
	binary.LittleEndian.PutUint16(bad[6:], 60000)
	if n, err := q.Write([][]byte{bad, echo(l.MAC(), 2)}, VnetHdrLen); n != 1 || err != nil {
		t.Errorf("write of one bad and one good frame: %d, %v; want 1, nil", n, err)
	}
	if q.Stats().BadVnetHdr != 1 {
		t.Errorf("refused headers counted: %d, want 1", q.Stats().BadVnetHdr)
	}
	readOne(t, l, isEchoReply)
}

// TestTUNMultiQueueKeepsFlowsOnOneQueue: the kernel spreads flows over the
// queues by their hash, and every packet of a flow takes the same queue.
func TestTUNMultiQueueKeepsFlowsOnOneQueue(t *testing.T) {
	l, ns := tunT(t, false, 2)
	ns.MustRun("ip", "route", "add", "198.51.100.0/24", "dev", "tun0")
	const flows, per = 16, 3
	for f := 0; f < flows; f++ {
		for i := 0; i < per; i++ {
			ns.MustRun("sh", "-c", fmt.Sprintf("echo x | socat -u - UDP4-SENDTO:198.51.100.2:9,sourceport=%d,reuseaddr", 20000+f))
		}
	}
	queueOf := map[uint16]map[int]int{} // source port -> queue -> packets
	bufs := [][]byte{make([]byte, 2048)}
	sizes := []int{0}
	got := 0
	deadline := time.Now().Add(2 * time.Second)
	for got < flows*per && time.Now().Before(deadline) {
		for qi := 0; qi < 2; qi++ {
			n, _ := l.Queue(qi).Read(bufs, sizes, 128)
			if n == 0 {
				continue
			}
			f := bufs[0][128 : 128+sizes[0]]
			if f[14+9] != 17 {
				continue
			}
			sp := binary.BigEndian.Uint16(f[14+20:])
			if queueOf[sp] == nil {
				queueOf[sp] = map[int]int{}
			}
			queueOf[sp][qi]++
			got++
		}
	}
	used := map[int]bool{}
	for sp, qs := range queueOf {
		if len(qs) != 1 {
			t.Errorf("flow from port %d on queues %v", sp, qs)
		}
		for qi := range qs {
			used[qi] = true
		}
	}
	if got != flows*per || len(used) != 2 {
		t.Errorf("read %d of %d packets, on %d queues; want all, on both", got, flows*per, len(used))
	}
}

// TestTUNFailedOpenLeavesNoDevice: a device OpenTUN created is gone again
// when a later step fails (here the MTU).
func TestTUNFailedOpenLeavesNoDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and /dev/net/tun")
	}
	ns := lab.NewT(t).MustNetns("t")
	err := ns.Do(func() error {
		_, err := OpenTUN(TUNConfig{Name: "tun0", Queues: 2, MTU: 20, Owner: -1, Group: -1})
		return err
	})
	if err == nil {
		t.Fatal("MTU 20 accepted")
	}
	if out, err := ns.Run(context.Background(), "ip", "link", "show", "tun0"); err == nil {
		t.Errorf("tun0 left behind:\n%s", out)
	}
}
