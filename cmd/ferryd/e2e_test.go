package main_test

// End-to-end acceptance tests: real ferryd and ferryctl binaries, real hosts
// in network namespaces with default offloads, real ping, traceroute,
// tracepath and iperf3. Each test builds its own A—R—B rig (internal/lab)
// and runs ferryd inside R; the same checks also run against the kernel
// forwarding in R, which proves the checks themselves are sound.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-router/ferry/internal/lab"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds ferryd and ferryctl once per test binary, on first use,
// so the kernel baseline tests run even while ferryd does not build.
func binaries(t *testing.T) (ferryd, ferryctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ferry-e2e-bin")
		if buildErr != nil {
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		for _, c := range []string{"ferryd", "ferryctl"} {
			cmd := exec.Command(gobin, "build", "-o", filepath.Join(binDir, c), "github.com/ferry-router/ferry/cmd/"+c)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", c, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "ferryd"), filepath.Join(binDir, "ferryctl")
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: run scripts/deps.sh (make test does)", tool)
		}
	}
}

// ferryRig builds a rig in ferry mode and starts ferryd in R with 2
// workers. ferryd's log is attached to the test output if the test fails,
// and the caller should end with stopFerry to assert a clean exit.
func ferryRig(t *testing.T, cfg lab.FerryConfig, setup func(*lab.Rig)) (*lab.Rig, *lab.Ferryd) {
	t.Helper()
	l := lab.NewT(t)
	needTools(t, "ping", "traceroute", "tracepath", "iperf3")
	ferryd, ferryctl := binaries(t)
	r := lab.MustRig(l, false)
	if setup != nil {
		setup(r)
	}
	cfg.Workers = 2
	f, err := r.StartFerryd(ferryd, ferryctl, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferryd log:\n%s", f.Output())
		}
	})
	return r, f
}

func stopFerry(t *testing.T, f *lab.Ferryd) {
	t.Helper()
	if !f.Running() {
		t.Fatalf("ferryd died during the test; log:\n%s", f.Output())
	}
	if err := f.Stop(); err != nil {
		t.Error(err)
	}
}

func run(t *testing.T, ns *lab.Netns, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := ns.Run(ctx, args...)
	return string(out), err
}

// --- checks shared by the kernel baseline and ferryd ---

func checkPing(t *testing.T, from *lab.Netns, dst string) {
	t.Helper()
	out, err := run(t, from, 30*time.Second, "ping", "-c", "20", "-i", "0.05", "-W", "1", dst)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping %s from %s: want 0%% loss (err %v):\n%s", dst, from.Name, err, out)
	}
}

var hopRE = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\S+)`)

func checkTraceroute(t *testing.T, r *lab.Rig) {
	t.Helper()
	// -N1: one probe in flight. By default traceroute sends 16 at once and
	// B answers only the first 6 that reach it (icmp_ratelimit's burst);
	// ferryd's workers forward different flows in parallel, so the TTL-2
	// probe need not be among them and hop 2 would read "*".
	out, err := run(t, r.A, 60*time.Second, "traceroute", "-n", "-q1", "-w1", "-N1", lab.AddrB)
	if err != nil {
		t.Errorf("traceroute: %v\n%s", err, out)
		return
	}
	hops := map[int]string{}
	for _, m := range hopRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		hops[n] = m[2]
	}
	if hops[1] != lab.AddrR0 || hops[2] != lab.AddrB || len(hops) != 2 {
		t.Errorf("traceroute: want hop 1 %s and hop 2 %s, got %v:\n%s", lab.AddrR0, lab.AddrB, hops, out)
	}
}

func checkNetUnreachable(t *testing.T, r *lab.Rig) {
	t.Helper()
	out, err := run(t, r.A, 30*time.Second, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.Unrouted)
	if err == nil {
		t.Errorf("ping to unrouted %s succeeded:\n%s", lab.Unrouted, out)
	}
	want := "From " + lab.AddrR0 + " icmp_seq=1 Destination Net Unreachable"
	if !strings.Contains(out, want) {
		t.Errorf("ping to unrouted %s: want %q:\n%s", lab.Unrouted, want, out)
	}
}

var fragRE = regexp.MustCompile(`(?i)From 192\.0\.2\.1 icmp_seq=\d+ Frag needed and DF set \(mtu = 1300\)|message too long, mtu=1300`)

// checkPMTU expects B's link to have MTU 1300 on both ends.
func checkPMTU(t *testing.T, r *lab.Rig) {
	t.Helper()
	out, err := run(t, r.A, 30*time.Second, "ping", "-M", "do", "-s", "1400", "-c", "3", "-i", "0.2", "-W", "1", lab.AddrB)
	if err == nil || !fragRE.MatchString(out) {
		t.Errorf("ping -M do -s 1400: want Frag needed with mtu 1300 (err %v):\n%s", err, out)
	}
	// Forget what ping just taught A, so tracepath discovers the PMTU itself.
	if out, err := run(t, r.A, 10*time.Second, "ip", "route", "flush", "cache"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = run(t, r.A, 60*time.Second, "tracepath", "-n", lab.AddrB)
	if err != nil || !strings.Contains(out, "pmtu 1300") || !strings.Contains(out, "Resume: pmtu 1300") {
		t.Errorf("tracepath: want pmtu 1300 (err %v):\n%s", err, out)
	}
	// Packets that fit still cross.
	out, err = run(t, r.A, 30*time.Second, "ping", "-M", "do", "-s", "1272", "-c", "3", "-i", "0.2", "-W", "1", lab.AddrB)
	if err != nil {
		t.Errorf("ping -M do -s 1272 (exactly 1300 bytes): %v\n%s", err, out)
	}
}

// iperfServer starts iperf3 -s in B and waits until it listens.
func iperfServer(t *testing.T, r *lab.Rig) {
	t.Helper()
	p := r.B.MustStart("iperf3", "-s", "-B", lab.AddrB)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := run(t, r.B, 5*time.Second, "ss", "-Hltn", "sport = :5201")
		if strings.Contains(out, "5201") {
			return
		}
		if done, err := p.Exited(); done {
			t.Fatalf("iperf3 server exited: %v\n%s", err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("iperf3 server not listening after 10 s:\n%s", p.Output())
}

type iperfResult struct {
	End struct {
		Sum struct {
			Packets     int64   `json:"packets"`
			LostPercent float64 `json:"lost_percent"`
			BitsPerSec  float64 `json:"bits_per_second"`
		} `json:"sum"`
		SumReceived struct {
			BitsPerSec float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

func iperfClient(t *testing.T, r *lab.Rig, args ...string) (iperfResult, bool) {
	t.Helper()
	var res iperfResult
	argv := append([]string{"iperf3", "-c", lab.AddrB, "-J"}, args...)
	out, err := run(t, r.A, 60*time.Second, argv...)
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || err != nil || res.Error != "" {
		t.Errorf("%s: err %v, json %v, iperf error %q:\n%s", strings.Join(argv, " "), err, jerr, res.Error, out)
		return res, false
	}
	return res, true
}

// checkTCP asserts a functional floor, not a benchmark: TCP that stalls
// or crawls (broken GSO or checksum handling) lands far below 1 Gbit/s.
func checkTCP(t *testing.T, r *lab.Rig, reverse bool) {
	t.Helper()
	args := []string{"-t", "3"}
	if reverse {
		args = append(args, "-R")
	}
	res, ok := iperfClient(t, r, args...)
	if !ok {
		return
	}
	bps := res.End.SumReceived.BitsPerSec
	t.Logf("iperf3 TCP reverse=%v: %.2f Gbit/s", reverse, bps/1e9)
	if bps <= 1e9 {
		t.Errorf("iperf3 TCP reverse=%v: %.3f Gbit/s, want > 1 Gbit/s", reverse, bps/1e9)
	}
}

func checkUDP(t *testing.T, r *lab.Rig) {
	t.Helper()
	res, ok := iperfClient(t, r, "-u", "-b", "100M", "-t", "2")
	if !ok {
		return
	}
	s := res.End.Sum
	t.Logf("iperf3 UDP 100M: %d packets, %.2f%% lost", s.Packets, s.LostPercent)
	if s.Packets == 0 || s.LostPercent >= 5 {
		t.Errorf("iperf3 UDP: %d packets, %.2f%% lost; want packets and < 5%% loss", s.Packets, s.LostPercent)
	}
}

// --- kernel baseline: the checks against Linux forwarding in R ---

func TestKernelBaseline(t *testing.T) {
	l := lab.NewT(t)
	needTools(t, "ping", "traceroute", "tracepath", "iperf3")
	r := lab.MustRig(l, true)
	t.Run("ping", func(t *testing.T) {
		checkPing(t, r.A, lab.AddrB)
		checkPing(t, r.B, lab.AddrA)
	})
	t.Run("traceroute", func(t *testing.T) { checkTraceroute(t, r) })
	t.Run("unreachable", func(t *testing.T) { checkNetUnreachable(t, r) })
	t.Run("iperf3", func(t *testing.T) {
		iperfServer(t, r)
		checkTCP(t, r, false)
		checkUDP(t, r)
	})
	t.Run("pmtu", func(t *testing.T) {
		if err := r.SetMTU(1300); err != nil {
			t.Fatal(err)
		}
		checkPMTU(t, r)
	})
}

// --- ferryd ---

func TestFerrydForwarding(t *testing.T) {
	r, f := ferryRig(t, lab.FerryConfig{}, nil)
	t.Run("ping A to B", func(t *testing.T) { checkPing(t, r.A, lab.AddrB) })
	t.Run("ping B to A", func(t *testing.T) { checkPing(t, r.B, lab.AddrA) })
	t.Run("ping ferry", func(t *testing.T) {
		checkPing(t, r.A, lab.AddrR0)
		checkPing(t, r.A, lab.AddrR1)
		checkPing(t, r.B, lab.AddrR1)
	})
	t.Run("traceroute", func(t *testing.T) { checkTraceroute(t, r) })
	t.Run("net unreachable", func(t *testing.T) { checkNetUnreachable(t, r) })
	t.Run("iperf3", func(t *testing.T) {
		iperfServer(t, r)
		t.Run("TCP A to B", func(t *testing.T) { checkTCP(t, r, false) })
		t.Run("TCP B to A", func(t *testing.T) { checkTCP(t, r, true) })
		t.Run("UDP", func(t *testing.T) { checkUDP(t, r) })
	})
	t.Run("ferryctl", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, what := range []string{"interfaces", "routes", "neighbors", "stats"} {
			out, err := f.Ctl(ctx, "show", what)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			t.Logf("ferryctl show %s:\n%s", what, out)
		}
		out, _ := f.Ctl(ctx, "show", "interfaces")
		for _, want := range []string{"r0", "r1"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("show interfaces lacks %s:\n%s", want, out)
			}
		}
		out, _ = f.Ctl(ctx, "show", "neighbors")
		for _, want := range []string{lab.AddrA, lab.AddrB} {
			if !strings.Contains(string(out), want) {
				t.Errorf("show neighbors lacks %s after traffic:\n%s", want, out)
			}
		}
	})
	stopFerry(t, f)
}

func TestFerrydPMTU(t *testing.T) {
	r, f := ferryRig(t, lab.FerryConfig{MTU1: 1300}, func(r *lab.Rig) {
		if err := r.SetMTU(1300); err != nil {
			t.Fatal(err)
		}
	})
	checkPMTU(t, r)
	checkPing(t, r.A, lab.AddrB)
	stopFerry(t, f)
}

// TestFerrydBadInput throws malformed frames at r0 from a raw socket in A:
// ferryd must count each under a named reason and keep forwarding.
func TestFerrydBadInput(t *testing.T) {
	r, f := ferryRig(t, lab.FerryConfig{}, nil)
	srcMAC, err := r.A.MAC("eth0")
	if err != nil {
		t.Fatal(err)
	}
	dstMAC, err := r.R.MAC("r0")
	if err != nil {
		t.Fatal(err)
	}
	eth := func(etherType uint16, payload []byte) []byte {
		b := make([]byte, 14, 14+len(payload))
		copy(b[0:6], dstMAC)
		copy(b[6:12], srcMAC)
		binary.BigEndian.PutUint16(b[12:14], etherType)
		return append(b, payload...)
	}
	// ip builds IPv4+UDP A->B with 16 bytes of payload, after mod has
	// changed the header; the checksum is computed after mod unless
	// keepSum says mod set it.
	ip := func(mod func(h []byte), keepSum bool) []byte {
		p := make([]byte, 20+8+16)
		h := p[:20]
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:4], uint16(len(p)))
		h[8] = 64
		h[9] = 17
		copy(h[12:16], net.ParseIP(lab.AddrA).To4())
		copy(h[16:20], net.ParseIP(lab.AddrB).To4())
		binary.BigEndian.PutUint16(p[20:22], 40000)
		binary.BigEndian.PutUint16(p[22:24], 9)
		binary.BigEndian.PutUint16(p[24:26], 8+16)
		if mod != nil {
			mod(h)
		}
		if !keepSum {
			binary.BigEndian.PutUint16(h[10:12], 0)
			binary.BigEndian.PutUint16(h[10:12], ipSum(h[:20]))
		}
		return p
	}
	frames := map[string][]byte{
		"ip_truncated":      eth(0x0800, ip(nil, false)[:12]),
		"ip_bad_checksum":   eth(0x0800, ip(func(h []byte) { binary.BigEndian.PutUint16(h[10:12], 0xdead) }, true)),
		"ip_bad_ihl":        eth(0x0800, ip(func(h []byte) { h[0] = 0x43 }, false)),
		"ttl_exceeded":      eth(0x0800, ip(func(h []byte) { h[8] = 0 }, false)),
		"unknown_ethertype": eth(0x88b5, []byte("ferry e2e: not a protocol anyone speaks")),
	}
	// Not asserted by name, but must not hurt: bad version, total length
	// beyond the frame, IHL beyond the packet.
	extra := [][]byte{
		eth(0x0800, ip(func(h []byte) { h[0] = 0x65 }, false)),
		eth(0x0800, ip(func(h []byte) { binary.BigEndian.PutUint16(h[2:4], 1400) }, false)),
		eth(0x0800, ip(func(h []byte) { h[0] = 0x4f }, false)),
		eth(0x0806, []byte{0, 1}),
	}
	err = r.A.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], dstMAC)
		send := func(fr []byte) error { return unix.Sendto(fd, fr, 0, sa) }
		for i := 0; i < 3; i++ {
			for _, fr := range frames {
				if err := send(fr); err != nil {
					return err
				}
			}
			for _, fr := range extra {
				if err := send(fr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw sender: %v", err)
	}
	checkPing(t, r.A, lab.AddrB)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := f.Ctl(ctx, "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	for reason := range frames {
		if n := dropCount(string(out), reason); n <= 0 {
			t.Errorf("show interfaces: drop reason %s not counted (got %d):\n%s", reason, n, out)
		}
	}
	stopFerry(t, f)
}

// dropCount sums the numbers printed next to a drop reason name, in
// whatever layout ferryctl uses ("name 3", "name=3", "name: 3", JSON).
func dropCount(out, reason string) int {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(reason) + `\b"?\s*[:=]?\s*(\d+)`)
	total := 0
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// TestFerrydLinkGone deletes a third port's link under ferryd: ferryd must
// survive, and r0/r1 must keep forwarding.
func TestFerrydLinkGone(t *testing.T) {
	var c *lab.Netns
	extra := "[[interface]]\nname = \"r2\"\nkind = \"afpacket\"\naddresses = [\"203.0.113.1/24\"]"
	r, f := ferryRig(t, lab.FerryConfig{Extra: extra}, func(r *lab.Rig) {
		c = r.Lab.MustNetns("c")
		if err := r.Lab.Veth(c, "eth0", r.R, "r2"); err != nil {
			t.Fatal(err)
		}
		c.MustRun("ip", "addr", "add", "203.0.113.2/24", "dev", "eth0")
	})
	checkPing(t, c, "203.0.113.1")
	// Deleting C's end removes the whole pair, r2 included.
	c.MustRun("ip", "link", "del", "eth0")
	time.Sleep(200 * time.Millisecond)
	checkPing(t, r.A, lab.AddrB)
	checkPing(t, r.B, lab.AddrA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := f.Ctl(ctx, "show", "interfaces"); err != nil {
		t.Errorf("ferryctl after link loss: %v\n%s", err, out)
	}
	stopFerry(t, f)
}
