package main

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/iface"
	"github.com/ferry-router/ferry/internal/lab"
)

// The kernel rig's IPv6 path, end to end (root only): every frame the
// generator's builder makes crosses R and is counted once by the sink as
// delivered, none as invalid, and an idle rig counts nothing.
func TestKernelRigIPv6Counts(t *testing.T) {
	l := lab.NewT(t)
	rig := lab.MustRig(l, true)
	sinkMAC, err := rig.B.MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := enableIPv6(rig, sinkMAC.String()); err != nil {
		t.Fatal(err)
	}
	routerMAC, err := rig.R.MAC("r0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	read := func() bench.SNMP {
		s, err := snmp(ctx, rig.B, "/proc/net/snmp6")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s0 := read()
	time.Sleep(time.Second)
	if s := read(); bench.Delivered6(s0, s) != 0 || bench.Invalid6(s0, s) != 0 {
		t.Fatalf("idle rig: %d delivered, %d invalid", bench.Delivered6(s0, s), bench.Invalid6(s0, s))
	}

	const n = 2000
	spec := bench.FrameSpec{Src: netip.MustParseAddr(genSrc6), Dst: netip.MustParseAddr(bench.SinkAddr6), Size: 64, DstPort: 9}
	copy(spec.DstMAC[:], routerMAC)
	s0 = read()
	err = rig.A.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		copy(spec.SrcMAC[:], ifi.HardwareAddr)
		link, err := iface.OpenAFPacket(iface.AFPacketConfig{Name: "eth0", Queues: 1, RingFrames: 256, FrameSize: 2048})
		if err != nil {
			return err
		}
		defer link.Close()
		q := link.Queue(0)
		// Small paced batches: the count must not depend on R keeping up.
		for sent := 0; sent < n; {
			var bufs [][]byte
			for i := sent; i < min(sent+50, n); i++ {
				f := spec.Frame(i)
				bufs = append(bufs, append(make([]byte, iface.VnetHdrLen, iface.VnetHdrLen+len(f)), f...))
			}
			w, err := q.Write(bufs, iface.VnetHdrLen)
			if err != nil {
				return err
			}
			sent += w
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	s1 := read()
	if d, inv := bench.Delivered6(s0, s1), bench.Invalid6(s0, s1); d != n || inv != 0 {
		t.Errorf("sent %d: sink counted %d delivered, %d invalid", n, d, inv)
	}
}
