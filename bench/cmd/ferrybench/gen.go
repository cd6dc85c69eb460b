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

// genSrc6 is the generator host's IPv6 address on the rig.
const genSrc6 = "2001:db8:1::2"

// genDstPort is the UDP destination port of the first 64,000 flows; flows
// past them count it up (bench.FrameSpec).
const genDstPort = 9

// docNets are the documentation ranges, the only addresses the generator
// will put in a frame, so a rig wired wrongly can never aim it at a real
// network.
var docNets = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// genAddrs resolves -src, -dst and -6: empty addresses take the defaults
// of the family, and both must be of one family and documentation
// addresses.
func genAddrs(src, dst string, v6 bool) (netip.Addr, netip.Addr, error) {
	if !v6 {
		for _, a := range []string{src, dst} {
			if p, err := netip.ParseAddr(a); err == nil && p.Is6() {
				v6 = true
			}
		}
	}
	def := [2]string{"192.0.2.2", "198.51.100.2"}
	if v6 {
		def = [2]string{genSrc6, bench.SinkAddr6}
	}
	var out [2]netip.Addr
	for i, a := range []string{src, dst} {
		if a == "" {
			a = def[i]
		}
		p, err := netip.ParseAddr(a)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
		if p.Is6() != v6 || p.Zone() != "" {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("%s: want both addresses %s", a, map[bool]string{false: "IPv4", true: "IPv6"}[v6])
		}
		doc := false
		for _, n := range docNets {
			doc = doc || n.Contains(p)
		}
		if !doc {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("%s: not in a documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)", a)
		}
		out[i] = p
	}
	return out[0], out[1], nil
}

// runGen is the generator, run inside the generator namespace pinned to
// its own CPU: it writes prebuilt frames to an AF_PACKET TX ring in
// batches, flat out or paced, for a bounded time.
func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	ifname := fs.String("if", "eth0", "interface")
	dstMAC := fs.String("dst-mac", "", "router's MAC")
	v6 := fs.Bool("6", false, "send IPv6 (default addresses "+genSrc6+" -> "+bench.SinkAddr6+"); -src/-dst in 2001:db8::/32 imply it")
	src := fs.String("src", "", "source address (default 192.0.2.2, or "+genSrc6+" with -6)")
	dst := fs.String("dst", "", "destination address (default 198.51.100.2, or "+bench.SinkAddr6+" with -6)")
	size := fs.Int("size", 64, "frame size including FCS (64..1518; IPv6 frames are at least 66)")
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
	srcA, dstA, err := genAddrs(*src, *dst, *v6)
	if err != nil {
		return err
	}
	spec := bench.FrameSpec{Src: srcA, Dst: dstA, Size: *size, DstPort: genDstPort}
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
		// Flat out, the clock is read every 64 batches; paced, before
		// every batch, since a skipped check would let 63 batches (4,032
		// frames) out unpaced after each pause.
		if *rate > 0 || i&63 == 0 {
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
