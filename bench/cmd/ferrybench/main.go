// Command ferrybench runs ferry's benchmark: the kernel and ferryd forward
// the same generated traffic across the same namespace rig, and the table
// it prints compares them.
//
//	gen (CPU 0) ── r0 [R: router under test, CPU 1] r1 ── sink
//
// The generator runs pinned to CPU 0. Everything the router does runs on
// CPU 1: RPS steers R's receive processing there, so the kernel forwards in
// softirq on CPU 1, and ferryd (all threads pinned to CPU 1) reads its
// rings there too. The sink's own receive work runs where R transmits, on
// CPU 1, for both contenders alike.
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gen" {
		if err := runGen(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ferrybench gen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferrybench:", err)
		os.Exit(1)
	}
}

type scenario struct {
	name  string
	size  int
	flows int
}

type result struct {
	scenario, contender string
	offered, delivered  []float64 // per trial, packets/s
	invalid             uint64
	ferryNs, machineNs  []float64 // CPU ns per delivered packet
	routerNs            []float64 // CPU 1 (the router's core) ns per delivered packet
	rttP50, rttP99      float64   // ms, latency rows only
	note                string
}

var verbose *bool

type opts struct {
	trials   int
	duration time.Duration
	warmup   time.Duration
	probes   int
	ferryd   string
	ferryctl string
	out      string
}

func run() error {
	quick := flag.Bool("quick", false, "one short trial per scenario (about 1 minute)")
	verbose = flag.Bool("v", false, "print ferryd's counters after each scenario")
	out := flag.String("out", "bench/results", "folder for the Markdown and CSV results")
	ferryd := flag.String("ferryd", "bin/ferryd", "ferryd binary")
	ferryctl := flag.String("ferryctl", "bin/ferryctl", "ferryctl binary")
	flag.Parse()
	o := opts{trials: 3, duration: 5 * time.Second, warmup: time.Second, probes: 1000, ferryd: *ferryd, ferryctl: *ferryctl, out: *out}
	if *quick {
		o.trials, o.duration, o.probes = 1, 2*time.Second, 300
	}
	for _, p := range []*string{&o.ferryd, &o.ferryctl} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %v (run `make build` first)", *p, err)
		}
		*p = abs
	}
	if err := lab.Available(); err != nil {
		return err
	}
	l, err := lab.New()
	if err != nil {
		return err
	}
	defer l.Close()
	l.CloseOnSignal()
	rig, err := lab.NewRig(l, true)
	if err != nil {
		return err
	}
	ctx := context.Background()
	sinkMAC, err := rig.B.MAC("eth0")
	if err != nil {
		return err
	}
	scenarios := []scenario{
		{"64B UDP, 1 flow", 64, 1},
		{"64B UDP, 65536 flows", 64, 65536},
		{"1500B UDP, 1 flow", 1500, 1},
	}
	started := time.Now()
	total := 2*(len(scenarios)+1) + 1
	step := 0
	progress := func(what string) {
		step++
		fmt.Printf("[%d/%d] %-40s elapsed %s\n", step, total, what, time.Since(started).Round(time.Second))
	}
	var results []result
	for _, contender := range []string{"kernel", "ferryd"} {
		// Placement: the kernel forwards in R's receive softirq, which RPS
		// steers to CPU 1, away from the generator. ferryd gets CPU 1 to
		// itself; the kernel's delivery into its RX ring stays in the
		// sender's softirq (no RPS), as a NIC's DMA would take that work off
		// the router's core. With both on CPU 1, softirq starves ferryd under
		// overload (receive livelock: measured 1.4 M ring drops per 23 k
		// forwarded), so that placement would measure the livelock, not ferry.
		rps := "2"
		if contender == "ferryd" {
			rps = "0"
		}
		for _, dev := range []string{"r0", "r1"} {
			if _, err := rig.R.Run(ctx, "sh", "-c", fmt.Sprintf("echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus", rps, dev)); err != nil {
				return fmt.Errorf("rps: %v", err)
			}
		}
		var f *lab.Ferryd
		if contender == "kernel" {
			if _, err := rig.R.Run(ctx, "ip", "neigh", "replace", bench.SinkAddr, "lladdr", sinkMAC.String(), "dev", "r1", "nud", "permanent"); err != nil {
				return err
			}
		}
		if contender == "ferryd" {
			if err := rig.SetKernelRouter(false); err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "ferrybench")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			f, err = rig.StartFerryd(o.ferryd, o.ferryctl, dir, lab.FerryConfig{Workers: 1,
				Extra: fmt.Sprintf("[[neighbor]]\nip = %q\nmac = %q\ndev = \"r1\"\n", bench.SinkAddr, sinkMAC)})
			if err != nil {
				return err
			}
			pid := f.Proc.Cmd.Process.Pid
			if out, err := exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(pid)).CombinedOutput(); err != nil {
				return fmt.Errorf("pin ferryd: %v: %s", err, out)
			}
		}
		rig.A.Run(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.AddrB) // resolve neighbours on the way
		routerMAC, err := rig.R.MAC("r0")
		if err != nil {
			return err
		}
		for _, sc := range scenarios {
			progress(sc.name + " / " + contender)
			r := result{scenario: sc.name, contender: contender}
			for t := 0; t < o.trials; t++ {
				if err := trial(rig, routerMAC.String(), sc, o, f, &r); err != nil {
					return fmt.Errorf("%s / %s: %v", sc.name, contender, err)
				}
				fmt.Printf("      trial %d: offered %s, delivered %s\n", t+1, bench.FormatRate(r.offered[t]), bench.FormatRate(r.delivered[t]))
			}
			results = append(results, r)
			if *verbose && f != nil {
				for _, what := range []string{"interfaces", "stats"} {
					out, _ := f.Ctl(ctx, "show", what)
					fmt.Printf("%s\n", out)
				}
			}
		}
		progress("latency idle / " + contender)
		if f != nil {
			// Latency is measured with ferryd free to run on either CPU, as
			// it is deployed: pinned away from where its packets arrive, each
			// hop would pay a cross-CPU wake-up of an idle vCPU.
			exec.Command("taskset", "-a", "-p", "-c", "0,1", strconv.Itoa(f.Proc.Cmd.Process.Pid)).Run()
		}
		lat, err := latency(rig, o.probes)
		if err != nil {
			return err
		}
		lat.contender = contender
		results = append(results, lat)
		if f != nil {
			if err := f.Stop(); err != nil {
				return err
			}
			// Poll mode, as VPP runs: with busy_poll_us longer than the gap
			// between probes the worker never sleeps, so no hop pays a
			// wake-up; the price is a core spinning while traffic flows.
			progress("latency idle / ferryd poll mode")
			dir, err := os.MkdirTemp("", "ferrybench")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			f2, err := rig.StartFerryd(o.ferryd, o.ferryctl, dir, lab.FerryConfig{Workers: 1, BusyPollUS: 10000})
			if err != nil {
				return err
			}
			rig.A.Run(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.AddrB)
			lat, err := latency(rig, o.probes)
			if err != nil {
				return err
			}
			lat.contender = "ferryd (busy_poll_us=10000)"
			results = append(results, lat)
			if err := f2.Stop(); err != nil {
				return err
			}
		}
	}
	md := table(results, o)
	fmt.Println()
	fmt.Print(md)
	return save(results, md, o)
}

// trial offers one scenario for warmup+duration and measures the middle.
func trial(rig *lab.Rig, routerMAC string, sc scenario, o opts, f *lab.Ferryd, r *result) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	total := o.warmup + o.duration + 500*time.Millisecond
	gen, err := rig.A.Start("taskset", "-c", "0", self, "gen", "-if", "eth0", "-dst-mac", routerMAC,
		"-size", strconv.Itoa(sc.size), "-flows", strconv.Itoa(sc.flows), "-duration", total.String(), "-dst", bench.SinkAddr)
	if err != nil {
		return err
	}
	time.Sleep(o.warmup)
	s0, err := snmp(ctx, rig.B)
	if err != nil {
		return err
	}
	c0, r0 := cpu()
	p0 := procCPU(f)
	t0 := time.Now()
	time.Sleep(o.duration)
	s1, err := snmp(ctx, rig.B)
	if err != nil {
		return err
	}
	c1, r1 := cpu()
	p1 := procCPU(f)
	el := time.Since(t0).Seconds()
	select {
	case <-gen.Done():
	case <-time.After(10 * time.Second):
		return fmt.Errorf("generator did not finish: %s", gen.Output())
	}
	var g genResult
	if err := json.Unmarshal([]byte(lastLine(gen.Output())), &g); err != nil {
		return fmt.Errorf("generator: %v: %s", err, gen.Output())
	}
	del := bench.Delivered(s0, s1)
	r.offered = append(r.offered, float64(g.Sent)/g.Seconds)
	r.delivered = append(r.delivered, float64(del)/el)
	r.invalid += bench.Invalid(s0, s1)
	if del > 0 {
		r.machineNs = append(r.machineNs, (c1-c0)*1e9/float64(del))
		r.routerNs = append(r.routerNs, (r1-r0)*1e9/float64(del))
		if f != nil {
			r.ferryNs = append(r.ferryNs, (p1-p0)*1e9/float64(del))
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func snmp(ctx context.Context, ns *lab.Netns) (bench.SNMP, error) {
	out, err := ns.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		return nil, err
	}
	return bench.ParseSNMP(string(out)), nil
}

// cpu returns the busy CPU time so far, in seconds, of the whole machine
// and of CPU 1 (the router's core), from /proc/stat.
func cpu() (all, cpu1 float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	busy := func(line string) float64 {
		var t float64
		for i, v := range strings.Fields(line)[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			if i != 3 && i != 4 { // idle, iowait
				t += n
			}
		}
		return t / 100 // USER_HZ
	}
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "cpu "):
			all = busy(l)
		case strings.HasPrefix(l, "cpu1 "):
			cpu1 = busy(l)
		}
	}
	return all, cpu1
}

// procCPU is ferryd's utime+stime in seconds.
func procCPU(f *lab.Ferryd) float64 {
	if f == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.Proc.Cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(fields[11], 64)
	k, _ := strconv.ParseFloat(fields[12], 64)
	return (u + k) / 100
}

// latency pings B from A through the router at idle.
func latency(rig *lab.Rig, probes int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := rig.A.Run(ctx, "ping", "-c", strconv.Itoa(probes), "-i", "0.002", "-W", "1", lab.AddrB)
	rtts := bench.ParsePingRTTs(string(out))
	if len(rtts) < probes*9/10 {
		return result{}, fmt.Errorf("ping: %d of %d replies (%v)", len(rtts), probes, err)
	}
	return result{
		scenario: fmt.Sprintf("latency idle (ping, %d probes)", probes),
		rttP50:   bench.Percentile(rtts, 50),
		rttP99:   bench.Percentile(rtts, 99),
	}, nil
}

func table(rs []result, o opts) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "ferry benchmark — %s, %d trial(s) of %v after %v warm-up, host %s, %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), o.trials, o.duration, o.warmup, host, cpuModel())
	b.WriteString("| scenario | contender | offered | delivered (median) | spread | loss | ferryd CPU ns/pkt | CPU 1 ns/pkt | machine CPU ns/pkt | vs kernel | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	kernel := map[string]result{}
	for _, r := range rs {
		if r.contender == "kernel" {
			kernel[r.scenario] = r
		}
	}
	for _, r := range rs {
		if r.rttP50 > 0 {
			k := kernel[r.scenario]
			target, met := "", ""
			if strings.HasPrefix(r.contender, "ferryd") {
				diff := (r.rttP50 - k.rttP50) * 1000
				target = "p50 within 50 µs of kernel"
				met = yes(diff <= 50)
				fmt.Fprintf(&b, "| %s | %s | | p50 %.0f µs, p99 %.0f µs | | | | | | %+.0f µs | %s | %s |\n", r.scenario, r.contender, r.rttP50*1000, r.rttP99*1000, diff, target, met)
			} else {
				fmt.Fprintf(&b, "| %s | %s | | p50 %.0f µs, p99 %.0f µs | | | | | | | | |\n", r.scenario, r.contender, r.rttP50*1000, r.rttP99*1000)
			}
			continue
		}
		off, _ := bench.MedianSpread(r.offered)
		del, spread := bench.MedianSpread(r.delivered)
		loss := 0.0
		if off > 0 {
			loss = max(0, 100*(1-del/off))
		}
		fns, _ := bench.MedianSpread(r.ferryNs)
		mns, _ := bench.MedianSpread(r.machineNs)
		rns, _ := bench.MedianSpread(r.routerNs)
		ratio, target, met := "", "", ""
		if r.contender == "ferryd" {
			if k, ok := kernel[r.scenario]; ok {
				kd, _ := bench.MedianSpread(k.delivered)
				if kd > 0 {
					ratio = fmt.Sprintf("%.2f×", del/kd)
					if strings.HasPrefix(r.scenario, "64B") {
						target = "≥ 1.1×"
						met = yes(del/kd >= 1.1)
					}
				}
			}
		}
		fns1 := ""
		if r.contender == "ferryd" {
			fns1 = fmt.Sprintf("%.0f", fns)
		}
		inv := ""
		if r.invalid > 0 {
			inv = fmt.Sprintf(" (%d invalid!)", r.invalid)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s%s | %s | %.1f%% | %s | %.0f | %.0f | %s | %s | %s |\n",
			r.scenario, r.contender, bench.FormatRate(off), bench.FormatRate(del), inv, bench.FormatRate(spread), loss, fns1, rns, mns, ratio, target, met)
	}
	for _, s := range []string{"full table", "1,000 rules", "masquerade 65,536 flows", "IPv6 64B", "TUN single stream"} {
		fmt.Fprintf(&b, "| %s | — | not built yet | | | | | | | | | |\n", s)
	}
	b.WriteString("\nCPU placement: generator on CPU 0. kernel: R's receive softirq, where it forwards, steered to CPU 1 by RPS. ferryd: pinned to CPU 1; the kernel's delivery into its RX ring runs in the generator's softirq on CPU 0 (no RPS). Delivered = packets the sink's kernel received with a valid IPv4 header, addressed to 198.51.100.3 (a static neighbour on the sink's MAC that the non-forwarding sink counts in Ip InAddrErrors and drops, so no UDP delivery or ICMP reply loads the router's core); invalid = Ip InHdrErrors + InCsumErrors. Machine CPU counts both CPUs (generator included) per delivered packet.\n")
	return b.String()
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
		}
	}
	return "unknown CPU"
}

func save(rs []result, md string, o opts) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	if err := os.WriteFile(filepath.Join(o.out, "results-"+stamp+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.out, "results-"+stamp+".csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"scenario", "contender", "trial", "offered_pps", "delivered_pps", "ferryd_cpu_ns_per_pkt", "cpu1_ns_per_pkt", "machine_cpu_ns_per_pkt", "rtt_p50_ms", "rtt_p99_ms"})
	for _, r := range rs {
		if r.rttP50 > 0 {
			w.Write([]string{r.scenario, r.contender, "", "", "", "", "", "", fmt.Sprint(r.rttP50), fmt.Sprint(r.rttP99)})
		}
		for i := range r.delivered {
			get := func(xs []float64) string {
				if i < len(xs) {
					return fmt.Sprintf("%.0f", xs[i])
				}
				return ""
			}
			w.Write([]string{r.scenario, r.contender, strconv.Itoa(i + 1), get(r.offered), get(r.delivered), get(r.ferryNs), get(r.routerNs), get(r.machineNs), "", ""})
		}
	}
	w.Flush()
	fmt.Printf("\nresults written to %s/results-%s.{md,csv}\n", o.out, stamp)
	return w.Error()
}
