package main

import (
	"strings"
	"testing"

	"github.com/ferry-router/ferry/filter"
)

// The masquerade row runs ferryd with the kernel's ruleset, which loads in
// ferryd's filter as a nat chain on the rig's ports, and the row is no
// longer marked not built.
func TestMasqueradeRow(t *testing.T) {
	var sc *scenario
	for i := range rateScenarios {
		if rateScenarios[i].name == scMasq {
			sc = &rateScenarios[i]
		}
	}
	if sc == nil {
		t.Fatal("no masquerade row")
	}
	if sc.notBuilt != "" || sc.ferryNft != sc.kernelNft || sc.ownBaseline != sc64Flows || sc.gen.flows != 65536 {
		t.Errorf("masquerade row: %+v", *sc)
	}
	hasFerryd := false
	for _, e := range sc.entrants {
		hasFerryd = hasFerryd || e.contender == ferryd
	}
	if !hasFerryd {
		t.Error("ferryd does not run the masquerade row")
	}
	prog, err := filter.Load("masquerade.nft", sc.ferryNft, filter.Env{Interfaces: map[string]int{"r0": 0, "r1": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if l := prog.Listing(prog.NewCounters()); !strings.Contains(l, `oifname "r1" counter packets 0 bytes 0 masquerade`) {
		t.Errorf("listing:\n%s", l)
	}
}

// ferryd with masquerade is judged against the kernel with masquerade
// (≥ 1.6×) and against its own 65,536-flow row without NAT (≥ 0.9×):
// both bounds in one target, met only if both are; with no baseline row
// (not run, or failed) the row is unjudged, not met.
func TestMasqueradeTargets(t *testing.T) {
	var scs []scenario
	for _, sc := range rateScenarios {
		if sc.name == sc64Flows || sc.name == scMasq {
			scs = append(scs, sc)
		}
	}
	pps := func(sc, c string, p placement, del float64) result {
		return result{scenario: sc, contender: c, placement: p.name, kind: kindPPS, offered: []float64{6e5}, delivered: []float64{del}}
	}
	rs := []result{
		pps(sc64Flows, kernel, rpsOff, 4e5), pps(sc64Flows, kernel, rpsCPU1, 3e5), pps(sc64Flows, ferryd, onCPU1, 5e5), pps(sc64Flows, ioOnly, onCPU1, 5.5e5),
		pps(scMasq, kernel, rpsOff, 2.5e5), pps(scMasq, kernel, rpsCPU1, 2e5), pps(scMasq, ferryd, onCPU1, 4.6e5),
	}
	rows := report(scs, rs)
	if err := failures(rows); err != nil {
		t.Fatal(err)
	}
	md := markdown(rows, opts{})
	for _, w := range []string{
		"| 1.84×, 0.92× own " + sc64Flows + " | ≥ 1.6× kernel; ≥ 0.90× own " + sc64Flows + " | yes |",
		"| " + scMasq + " | kernel | RPS off (best; RPS to CPU 1: 200 kpps) |",
		"| 0.62× own " + sc64Flows + " |  |  |",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("table lacks %q:\n%s", w, md)
		}
	}
	if !strings.Contains(md, "address (198.51.100.1) instead of 192.0.2.2") || strings.Contains(md, "(notes:") {
		t.Errorf("the notes lack the masquerade row:\n%s", md)
	}
	if strings.Contains(md, "not built") {
		t.Errorf("the masquerade row is still marked not built:\n%s", md)
	}
	rs[6].delivered[0] = 4.4e5 // 1.76× kernel, 0.88× own
	if md := markdown(report(scs, rs), opts{}); !strings.Contains(md, "| 1.76×, 0.88× own "+sc64Flows+" | ≥ 1.6× kernel; ≥ 0.90× own "+sc64Flows+" | no |") {
		t.Errorf("0.88× own met its target:\n%s", md)
	}
	rs[6].delivered[0] = 3.9e5 // 1.56× kernel, 0.78× own
	if md := markdown(report(scs, rs), opts{}); !strings.Contains(md, "| ≥ 1.6× kernel; ≥ 0.90× own "+sc64Flows+" | no |") {
		t.Errorf("1.56× kernel met its target:\n%s", md)
	}
	rs[6].delivered[0] = 4.6e5
	if md := markdown(report(scs[1:], rs[4:]), opts{}); !strings.Contains(md, "| 1.84× | ≥ 1.6× kernel; ≥ 0.90× own "+sc64Flows+" (no baseline) | unjudged |") {
		t.Errorf("without its baseline the row was judged:\n%s", md)
	}
	rs[4].delivered[0], rs[5].delivered[0] = 3e5, 2e5 // 1.53× kernel, no baseline
	if md := markdown(report(scs[1:], rs[4:]), opts{}); !strings.Contains(md, "| 1.53× | ≥ 1.6× kernel; ≥ 0.90× own "+sc64Flows+" (no baseline) | no |") {
		t.Errorf("a missed bound read as unjudged:\n%s", md)
	}
	// A failed ferryd is a failed rig, whatever its targets.
	rs[6].delivered[0] = 100
	if err := failures(report(scs, rs)); err == nil || !strings.Contains(err.Error(), scMasq) {
		t.Errorf("failures = %v", err)
	}
}
