package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

const (
	scLatIdle = "latency idle, ping"
	scLatSpin = "latency idle, spinning prober"
	scLatLoad = "latency at half load, ping"
)

// Idle latency: ferryd pinned to CPU 1 as for packet rates, and unpinned
// (the freedom the kernel's row has), and in poll mode as VPP runs.
var latencyIdle = entrants(kernelAtBest, []entrant{{ferryd, onCPU1}, {ferryd, onCPUBoth}, {ferryPoll, onCPU1}})

// latencyScenarios: ping (or the spinning prober) from A, pinned to CPU
// 0, to B through the router; probes every 2 ms.
var latencyScenarios = []scenario{
	{name: scLatIdle, measures: kindRTT, entrants: latencyIdle, target: &target{p50Within: 50 * time.Microsecond}},
	{name: scLatSpin, measures: kindRTT, entrants: latencyIdle, target: &target{p50Within: 50 * time.Microsecond}},
	{name: scLatLoad, measures: kindRTT, entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}}),
		gen: genSpec{size: 64, flows: 65536, rateOf: sc64Flows, rateShare: 0.5}, target: &target{noLoss: true}},
}

func runLatency(r *runner, sc *scenario) error {
	rate := 0.0
	if sc.gen.rateOf != "" {
		best, ok := bestKernel(r.results, sc.gen.rateOf)
		if !ok {
			return fmt.Errorf("load from %q: no kernel figure (run it first)", sc.gen.rateOf)
		}
		d, _ := bench.MedianSpread(best.delivered)
		if rate = d * sc.gen.rateShare; rate <= 0 {
			return fmt.Errorf("load from %q: the kernel delivered nothing", sc.gen.rateOf)
		}
	}
	for _, e := range sc.entrants {
		c, err := r.ensure(e, sc)
		if err != nil {
			return err
		}
		k0 := readCounters(r.ctx, c)
		lat, err := latency(c, r.o.probes, "0", rate, sc.gen, sc.name == scLatSpin)
		if err != nil {
			return fmt.Errorf("%s (%s): %v", e.contender, e.place.name, err)
		}
		lat.addCounters(k0, readCounters(r.ctx, c))
		lat.scenario, lat.contender, lat.placement = sc.name, e.contender, e.place.name
		if rate > 0 {
			lat.note += ", generator at " + bench.FormatRate(rate)
		}
		fmt.Printf("      %-40s p50 %.0f µs, p99 %.0f µs (%s)\n", e.contender+" ("+e.place.name+")", lat.rttP50*1000, lat.rttP99*1000, lat.note)
		r.results = append(r.results, lat)
	}
	return nil
}

// latency pings B from A through the router, from ping (or, with spin,
// ferrybench probe) pinned to cpu, with the generator offering rate
// packets/s meanwhile (0: idle).
func latency(c *contender, probes int, cpu string, rate float64, g genSpec, spin bool) (result, error) {
	rig := c.rig.rig
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if rate > 0 {
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		dur := time.Duration(probes)*2*time.Millisecond + 3*time.Second
		gen, err := rig.A.Start("taskset", "-c", "0", self, "gen", "-if", "eth0", "-dst-mac", c.rig.routerMAC,
			"-size", strconv.Itoa(g.size), "-flows", strconv.Itoa(g.flows), "-duration", dur.String(), "-dst", bench.SinkAddr, "-rate", fmt.Sprint(rate))
		if err != nil {
			return result{}, err
		}
		defer func() { <-gen.Done() }()
		time.Sleep(500 * time.Millisecond)
	}
	var rtts []float64
	if spin {
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		out, err := rig.A.Run(ctx, "taskset", "-c", cpu, self, "probe", "-dst", lab.AddrB, "-n", strconv.Itoa(probes))
		if err != nil {
			return result{}, err
		}
		var v struct {
			RTTs []float64 `json:"rtt_us"`
		}
		if err := json.Unmarshal([]byte(lastLine(string(out))), &v); err != nil {
			return result{}, fmt.Errorf("probe: %v: %s", err, out)
		}
		for _, us := range v.RTTs {
			rtts = append(rtts, us/1000)
		}
	} else {
		// ping exits non-zero when probes go unanswered: the count of
		// replies is the measurement, judged with the row (judge.go).
		out, _ := rig.A.Run(ctx, "taskset", "-c", cpu, "ping", "-c", strconv.Itoa(probes), "-i", "0.002", "-W", "1", lab.AddrB)
		rtts = bench.ParsePingRTTs(string(out))
	}
	// Lost probes are a measurement (under load they are the loss), not a
	// reason to throw away the run: they are reported beside the figures.
	note := fmt.Sprintf("%d probes", probes)
	if lost := probes - len(rtts); lost > 0 {
		note += fmt.Sprintf(", %d lost", lost)
	}
	return result{
		kind:    kindRTT,
		probes:  probes,
		replies: len(rtts),
		rttP50:  bench.Percentile(rtts, 50),
		rttP99:  bench.Percentile(rtts, 99),
		note:    note,
	}, nil
}
