package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

const (
	sc64       = "64B UDP, 1 flow"
	sc64Flows  = "64B UDP, 65536 flows"
	sc1500     = "1500B UDP, 1 flow"
	scMasq     = "64B UDP, 65536 flows, masquerade"
	scRules10  = "64B UDP, 1 flow, 10 filter rules"
	scRules    = "64B UDP, 1 flow, 1,000 filter rules"
	scRules10k = "64B UDP, 1 flow, 10,000 filter rules"
	scV6       = "IPv6 64B UDP, 1 flow"
	scV6Flows  = "IPv6 64B UDP, 65536 flows"
)

// Packet-rate contenders: the kernel at its best, ferryd, and the io-only
// floor (the same rings and batch loop with no pipeline) beside them.
var rateAll = entrants(kernelAtBest, []entrant{{ferryd, onCPU1}, {ioOnly, onCPU1}})

// rateScenarios: the generator offers frames flat out; the sink counts
// what arrives valid. A filter or NAT row gives ferryd the kernel's
// ruleset (ferryNft, the same text as kernelNft).
var rateScenarios = []scenario{
	{name: sc64, measures: kindPPS, entrants: rateAll, gen: genSpec{size: 64, flows: 1}},
	{name: sc64Flows, measures: kindPPS, entrants: rateAll, gen: genSpec{size: 64, flows: 65536},
		target: &target{ratio: 1.0}},
	{name: "64B UDP, 1,000,000 flows", measures: kindPPS, entrants: rateAll, gen: genSpec{size: 64, flows: 1000000}},
	{name: "512B UDP, 1 flow", measures: kindPPS, entrants: rateAll, gen: genSpec{size: 512, flows: 1}},
	{name: sc1500, measures: kindPPS, entrants: rateAll, gen: genSpec{size: 1500, flows: 1}},
	{name: "IMIX UDP (7:4:1 of 64/576/1500B), 1,000 flows", measures: kindPPS, entrants: rateAll, gen: genSpec{flows: 1000, imix: true}},
	// Masquerade: both routers translate every flow's source to r1's
	// address. ferryd is judged against the kernel with the same ruleset,
	// and against its own row without NAT (sc64Flows, the same frames).
	{name: scMasq, measures: kindPPS, entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}}), gen: genSpec{size: 64, flows: 65536},
		kernelNft: masquerade, ferryNft: masquerade, ownBaseline: sc64Flows, target: &target{ratio: 1.6, ownRatio: 0.9}},
	// The filter rows: ferryd with 10, 1,000 and 10,000 rules that match
	// nothing the generator sends, the kernel with 1,000. ferryd at 1,000
	// is judged against the kernel at 1,000, ferryd at 10,000 against its
	// own row at 10.
	{name: scRules10, measures: kindPPS, entrants: []entrant{{ferryd, onCPU1}}, gen: genSpec{size: 64, flows: 1},
		ferryNft: filterRules(10)},
	{name: scRules, measures: kindPPS, entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}}), gen: genSpec{size: 64, flows: 1},
		kernelNft: filterRules(1000), ferryNft: filterRules(1000), target: &target{ratio: 5}},
	{name: scRules10k, measures: kindPPS, entrants: []entrant{{ferryd, onCPU1}}, gen: genSpec{size: 64, flows: 1},
		ferryNft: filterRules(10000), ownBaseline: scRules10, target: &target{ratio: 0.9, vsOwnBaseline: true}},
	{name: scV6, measures: kindPPS, entrants: rateAll, gen: genSpec{size: 64, flows: 1, ipv6: true}},
	{name: scV6Flows, measures: kindPPS, entrants: rateAll, gen: genSpec{size: 64, flows: 65536, ipv6: true}},
}

// masquerade translates the source of everything leaving through r1 (to
// the sink) to r1's address, lab.AddrR1. A nat chain sees the first packet
// of each connection only, in nftables as in ferryd, so its counter says
// how many connections were translated: one per flow (65,536), made in the
// warm-up, before anything is measured.
const masquerade = "table ip ferrybench {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"r1\" counter masquerade\n }\n}\n"

// filterRules is an nftables forward chain of n drop rules that match
// nothing the generator sends (it sends from lab.AddrA, 192.0.2.2, to
// UDP ports 9 and up, one per 64,000 flows: never from 203.0.113.0/24,
// nor to ports 1000 and up), then a counter accept that every forwarded
// packet reaches, which shows the chain ran and nothing matched before it.
// The kernel walks the n rules for every packet; ferryd's filter indexes
// a chain by L4 protocol and destination port, so for these rules its
// cost should not grow with n, which the 10,000-rule row checks.
func filterRules(n int) string {
	var b strings.Builder
	b.WriteString("table ip ferrybench {\n chain forward_rules {\n  type filter hook forward priority filter; policy accept;\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  ip saddr 203.0.113.%d udp dport %d drop\n", i%256, 1000+i)
	}
	b.WriteString("  counter accept\n }\n}\n")
	return b.String()
}

// runRate measures a packet-rate scenario, alternating entrants trial by
// trial.
func runRate(r *runner, sc *scenario) error {
	for _, e := range sc.entrants {
		if _, err := r.ensure(e, sc); err != nil {
			return err
		}
	}
	if sc.setup != nil {
		if err := sc.setup(r); err != nil {
			return err
		}
	}
	if sc.kernelNft != "" {
		k := r.rigs[rigKernel].rig
		path := filepath.Join(r.dir, "ruleset.nft")
		if err := os.WriteFile(path, []byte(sc.kernelNft), 0o600); err != nil {
			return err
		}
		if out, err := k.R.Run(r.ctx, "nft", "-f", path); err != nil {
			return fmt.Errorf("nft: %v: %s", err, out)
		}
		defer k.R.Run(r.ctx, "nft", "flush", "ruleset")
	}
	rs := make([]result, len(sc.entrants))
	for t := 0; t < r.o.trials; t++ {
		for i, e := range sc.entrants {
			c, err := r.ensure(e, sc)
			if err != nil {
				return err
			}
			rs[i].scenario, rs[i].contender, rs[i].placement, rs[i].kind = sc.name, e.contender, e.place.name, kindPPS
			if err := trial(c, sc.gen, r.o, &rs[i]); err != nil {
				return fmt.Errorf("%s (%s): %v", e.contender, e.place.name, err)
			}
			fmt.Printf("      trial %d %-32s offered %s, delivered %s\n", t+1, e.contender+" ("+e.place.name+")",
				bench.FormatRate(rs[i].offered[t]), bench.FormatRate(rs[i].delivered[t]))
		}
	}
	if sc.kernelNft != "" || sc.ferryNft != "" {
		if err := r.checkRulesets(sc); err != nil {
			return err
		}
	}
	if *verbose {
		if c := r.contenders[ferryd]; c.f != nil {
			for _, what := range []string{"interfaces", "stats"} {
				out, _ := c.f.Ctl(r.ctx, "show", what)
				fmt.Printf("%s\n", out)
			}
		}
	}
	r.results = append(r.results, rs...)
	return nil
}

// trial offers one scenario for warmup+duration and measures the middle.
func trial(c *contender, g genSpec, o opts, r *result) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rig := c.rig.rig
	ctx := context.Background()
	total := o.warmup + o.duration + 500*time.Millisecond
	args := []string{"taskset", "-c", "0", self, "gen", "-if", "eth0", "-dst-mac", c.rig.routerMAC,
		"-size", strconv.Itoa(max(g.size, 64)), "-flows", strconv.Itoa(g.flows), "-duration", total.String()}
	// The sink's counters for the family: /proc/net/snmp for IPv4,
	// /proc/net/snmp6 for IPv6.
	counters, delivered, invalid := "/proc/net/snmp", bench.Delivered, bench.Invalid
	if g.ipv6 {
		args = append(args, "-6", "-dst", bench.SinkAddr6)
		counters, delivered, invalid = "/proc/net/snmp6", bench.Delivered6, bench.Invalid6
	} else {
		args = append(args, "-dst", bench.SinkAddr)
	}
	if g.imix {
		args = append(args, "-imix")
	}
	gen, err := rig.A.Start(args...)
	if err != nil {
		return err
	}
	time.Sleep(o.warmup)
	s0, err := snmp(ctx, rig.B, counters)
	if err != nil {
		return err
	}
	k0 := readCounters(ctx, c)
	c0, r0 := cpu()
	p0 := procCPU(c.f)
	t0 := time.Now()
	time.Sleep(o.duration)
	s1, err := snmp(ctx, rig.B, counters)
	if err != nil {
		return err
	}
	c1, r1 := cpu()
	p1 := procCPU(c.f)
	el := time.Since(t0).Seconds()
	k1 := readCounters(ctx, c)
	select {
	case <-gen.Done():
	case <-time.After(10 * time.Second):
		return fmt.Errorf("generator did not finish: %s", gen.Output())
	}
	var gr genResult
	if err := json.Unmarshal([]byte(lastLine(gen.Output())), &gr); err != nil {
		return fmt.Errorf("generator: %v: %s", err, gen.Output())
	}
	del := delivered(s0, s1)
	r.offered = append(r.offered, float64(gr.Sent)/gr.Seconds)
	r.delivered = append(r.delivered, float64(del)/el)
	r.invalid += invalid(s0, s1)
	r.addCounters(k0, k1)
	if del > 0 {
		r.machineNs = append(r.machineNs, (c1-c0)*1e9/float64(del))
		r.routerNs = append(r.routerNs, (r1-r0)*1e9/float64(del))
		if c.f != nil {
			r.ferryNs = append(r.ferryNs, (p1-p0)*1e9/float64(del))
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// snmp reads the namespace's /proc/net/snmp or /proc/net/snmp6.
func snmp(ctx context.Context, ns *lab.Netns, file string) (bench.SNMP, error) {
	out, err := ns.Run(ctx, "cat", file)
	if err != nil {
		return nil, err
	}
	if file == "/proc/net/snmp6" {
		return bench.ParseSNMP6(string(out)), nil
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
