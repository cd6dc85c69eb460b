package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/iface"
)

// imixSizes is the simple IMIX: 7 frames of 64 bytes, 4 of 576, 1 of 1500.
var imixSizes = []int{64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 64, 576}

// genResult is what `ferrybench gen` prints for its parent.
type genResult struct {
	Sent    uint64  `json:"sent"`
	Seconds float64 `json:"seconds"`
}

// runGen is the generator, run inside the generator namespace pinned to
// its own CPU: it writes prebuilt frames to an AF_PACKET TX ring in
// batches, flat out or paced, for a bounded time.
func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	ifname := fs.String("if", "eth0", "interface")
	dstMAC := fs.String("dst-mac", "", "router's MAC")
	src := fs.String("src", "192.0.2.2", "source address")
	dst := fs.String("dst", "198.51.100.2", "destination address")
	size := fs.Int("size", 64, "frame size including FCS (64..1518)")
	flows := fs.Int("flows", 1, "distinct 5-tuples")
	dur := fs.Duration("duration", 3*time.Second, "how long to send (bounded)")
	rate := fs.Float64("rate", 0, "packets/s; 0 sends flat out")
	imix := fs.Bool("imix", false, "cycle frame sizes 64, 576 and 1500 bytes 7:4:1 (simple IMIX) instead of -size")
	fs.Parse(args)
	if *flows < 1 || *flows > 1000000 {
		return fmt.Errorf("-flows %d: want 1..1000000", *flows)
	}
	if *dur > 5*time.Minute {
		return fmt.Errorf("duration %v: at most 5m", *dur)
	}
	mac, err := net.ParseMAC(*dstMAC)
	if err != nil {
		return fmt.Errorf("-dst-mac: %v", err)
	}
	ifi, err := net.InterfaceByName(*ifname)
	if err != nil {
		return err
	}
	spec := bench.FrameSpec{Src: netip.MustParseAddr(*src), Dst: netip.MustParseAddr(*dst), Size: *size, DstPort: 9}
	copy(spec.SrcMAC[:], ifi.HardwareAddr)
	copy(spec.DstMAC[:], mac)
	n := *flows
	if *imix {
		n = max(n, len(imixSizes)) // every size at least once, even for one flow
	}
	frames := make([][]byte, n)
	for i := range frames {
		if *imix {
			spec.Size = imixSizes[i%len(imixSizes)]
		}
		f := spec.Frame(i % *flows)
		frames[i] = append(make([]byte, iface.VnetHdrLen, iface.VnetHdrLen+len(f)), f...)
	}
	link, err := iface.OpenAFPacket(iface.AFPacketConfig{Name: *ifname, Queues: 1, RingFrames: 2048, FrameSize: 2048})
	if err != nil {
		return err
	}
	defer link.Close()
	q := link.Queue(0)
	const batch = 64
	bufs := make([][]byte, batch)
	var sent uint64
	next := 0
	start := time.Now()
	deadline := start.Add(*dur)
	for i := 0; ; i++ {
		if i&63 == 0 {
			now := time.Now()
			if now.After(deadline) {
				break
			}
			if *rate > 0 {
				due := uint64(now.Sub(start).Seconds() * *rate)
				if sent >= due {
					time.Sleep(50 * time.Microsecond)
					continue
				}
			}
		}
		for k := range bufs {
			bufs[k] = frames[next]
			if next++; next == n {
				next = 0
			}
		}
		w, err := q.Write(bufs, iface.VnetHdrLen)
		if err != nil {
			return err
		}
		sent += uint64(w)
		if w < batch {
			// The ring is full: give the kernel a moment rather than spin
			// on a slot that is still in flight.
			next = (next - (batch - w) + 64*n) % n
		}
	}
	el := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(genResult{Sent: sent, Seconds: el})
}
