package main

import (
	"strings"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    result
		fail string // substring of the verdict; "" = the figure stands
	}{
		{"delivers most", result{kind: kindPPS, offered: []float64{6e5}, delivered: []float64{5e5}}, ""},
		{"exactly 5%", result{kind: kindPPS, offered: []float64{1e5}, delivered: []float64{5e3}}, ""},
		{"just under 5%", result{kind: kindPPS, offered: []float64{1e5}, delivered: []float64{4900}}, "delivered 5 kpps of 100 kpps offered (4.90%)"},
		{"silent zero", result{kind: kindPPS, offered: []float64{5e3}, delivered: []float64{0}}, "delivered 0 pps of 5 kpps offered (0.00%); no counter moved"},
		{"nothing offered", result{kind: kindPPS, offered: []float64{0}, delivered: []float64{0}}, "delivered 0 pps of 0 pps"},
		{"no trials", result{kind: kindPPS}, "delivered 0 pps"},
		{"counters say where", result{kind: kindPPS, offered: []float64{6.6e5, 6.4e5}, delivered: []float64{621, 633},
			ctr: counters{"R r0 rx": 2600000, "R r0 rx_dropped": 2590000, "R r1 tx": 2500, "sink eth0 rx_dropped": 0}},
			"delivered 627 pps of 650 kpps offered (0.10%); counters: R r0 rx 2600000, R r0 rx_dropped 2590000, R r1 tx 2500"},
		{"probes answered", result{kind: kindRTT, probes: 300, replies: 296}, ""},
		{"probes lost", result{kind: kindRTT, probes: 300, replies: 14}, "14 of 300 probes answered"},
		{"tcp", result{kind: kindGbps, gbps: []float64{9.1}}, ""},
		{"tcp zero", result{kind: kindGbps, gbps: []float64{0, 0, 1}}, "no TCP throughput"},
		{"rss", result{kind: kindRSS}, "could not be read"},
	} {
		got := verdict(tc.r)
		if (got == "") != (tc.fail == "") || !strings.Contains(got, tc.fail) {
			t.Errorf("%s: verdict %q, want %q", tc.name, got, tc.fail)
		}
	}
}

// A contender that delivers next to nothing fails the run, and its row
// says so with the counters; the kernel fails only if its best placement
// does.
func TestFailedRigFailsTheRun(t *testing.T) {
	scs := []scenario{{name: sc64Flows, measures: kindPPS, entrants: rateAll, target: &target{ratio: 1}}}
	ok := func(c string, p placement, del float64) result {
		return result{scenario: sc64Flows, contender: c, placement: p.name, kind: kindPPS, offered: []float64{6e5}, delivered: []float64{del}}
	}
	collapsed := ok(kernel, rpsCPU1, 600)
	collapsed.ctr = counters{"R r0 rx_dropped": 1200000}
	good := []result{ok(kernel, rpsOff, 5e5), collapsed, ok(ferryd, onCPU1, 5.2e5), ok(ioOnly, onCPU1, 5.5e5)}
	rows := report(scs, good)
	if err := failures(rows); err != nil {
		t.Fatalf("healthy run judged failed: %v", err)
	}
	md := markdown(rows, opts{})
	if !strings.Contains(md, "| 1.04× | ≥ 1.0× kernel | yes |") {
		t.Errorf("ferryd not compared with the kernel's best placement:\n%s", md)
	}

	deadFerry := append([]result(nil), good...)
	deadFerry[2] = ok(ferryd, onCPU1, 0)
	deadFerry[2].ctr = counters{"ferryd r0 rx": 1200000, "ferryd r0 rx_ring_full": 3000, "ferryd r1 tx_ring_full": 1197000}
	rows = report(scs, deadFerry)
	err := failures(rows)
	if err == nil || !strings.Contains(err.Error(), "ferryd r1 tx_ring_full 1197000") {
		t.Fatalf("ferryd delivering nothing: failures = %v", err)
	}
	if md := markdown(rows, opts{}); !strings.Contains(md, "| 64B UDP, 65536 flows | ferryd | on CPU 1 | **FAILED RIG**: delivered 0 pps of 600 kpps offered (0.00%); counters: ferryd r0 rx 1200000") {
		t.Errorf("the failed row does not say so:\n%s", md)
	}

	deadKernel := append([]result(nil), good...)
	deadKernel[0] = ok(kernel, rpsOff, 900)
	err = failures(report(scs, deadKernel))
	if err == nil || !strings.Contains(err.Error(), "kernel (RPS off)") {
		t.Fatalf("kernel collapsed in both placements: failures = %v", err)
	}
}

// Latency at half load meets its target only with no probe lost and no
// frame lost to a full RX ring.
func TestHalfLoadTarget(t *testing.T) {
	scs := []scenario{{name: scLatLoad, measures: kindRTT, entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}}), target: &target{noLoss: true}}}
	k := result{scenario: scLatLoad, contender: kernel, placement: rpsOff.name, kind: kindRTT, probes: 300, replies: 300, rttP50: 0.05}
	f := result{scenario: scLatLoad, contender: ferryd, placement: onCPU1.name, kind: kindRTT, probes: 300, replies: 300, rttP50: 0.03,
		ctr: counters{"ferryd r0 rx_ring_full": 4}}
	md := markdown(report(scs, []result{k, f}), opts{duration: time.Second})
	if !strings.Contains(md, "rx_ring_full 4) | ferryd | on CPU 1 | | p50 30 µs, p99 0 µs | | | | | | -20 µs | no probe lost, rx_ring_full 0 | no |") {
		t.Errorf("ring drops not judged:\n%s", md)
	}
	f.ctr = nil
	md = markdown(report(scs, []result{k, f}), opts{duration: time.Second})
	if !strings.Contains(md, "| no probe lost, rx_ring_full 0 | yes |") {
		t.Errorf("clean row not met:\n%s", md)
	}
}
