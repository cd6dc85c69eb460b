package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The IPv6 rows carry figures in the Markdown table and the CSV, ferryd's
// with its ratio to the kernel's best placement; a row for a feature
// ferryd lacks says not built yet and why, with no figure of any kind.
// The kernel's row is its better placement, named, with the other's
// figure beside it; the CSV keeps both.
func TestIPv6RowsInTableAndCSV(t *testing.T) {
	const scNot = "64B UDP, a feature not built"
	scs := []scenario{
		{name: scV6, measures: kindPPS, entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}})},
		{name: scNot, measures: kindPPS, entrants: kernelAtBest, notBuilt: "the X issue"},
	}
	rs := []result{
		{scenario: scV6, contender: kernel, placement: rpsOff.name, offered: []float64{5.5e5}, delivered: []float64{4.4e5}, machineNs: []float64{3300}, routerNs: []float64{2100}},
		{scenario: scV6, contender: kernel, placement: rpsCPU1.name, offered: []float64{5.6e5}, delivered: []float64{621}, machineNs: []float64{9e6}, routerNs: []float64{8e6}},
		{scenario: scV6, contender: ferryd, placement: onCPU1.name, offered: []float64{5.5e5}, delivered: []float64{3.3e5}, ferryNs: []float64{1500}, machineNs: []float64{3000}, routerNs: []float64{1600}},
		{scenario: scNot, contender: kernel, placement: rpsOff.name, offered: []float64{5e5}, delivered: []float64{4e5}, machineNs: []float64{3000}, routerNs: []float64{2000}},
	}
	o := opts{trials: 1, duration: 2 * time.Second, warmup: time.Second, out: t.TempDir()}
	rows := report(scs, rs)
	md := markdown(rows, o)
	want := []string{
		"| IPv6 64B UDP, 1 flow | kernel | RPS off (best; RPS to CPU 1: 621 pps) | 550 kpps | 440 kpps | 0 pps | 20.0% |  | 2100 | 3300 |",
		"| IPv6 64B UDP, 1 flow | ferryd | on CPU 1 | 550 kpps | 330 kpps | 0 pps | 40.0% | 1500 | 1600 | 3000 | 0.75× |",
		"| " + scNot + " | ferryd | | not built yet (the X issue) |",
		"Ip6InAddrErrors",
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("table lacks %q:\n%s", w, md)
		}
	}
	if err := failures(rows); err != nil {
		t.Errorf("the kernel's losing placement failed the run: %v", err)
	}
	if err := save(rows, md, o); err != nil {
		t.Fatal(err)
	}
	csvs, _ := filepath.Glob(filepath.Join(o.out, "results-*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("CSV files: %v", csvs)
	}
	b, err := os.ReadFile(csvs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`"IPv6 64B UDP, 1 flow",kernel,RPS off,1,550000,440000,,2100,3300,,,,,best placement`,
		`"IPv6 64B UDP, 1 flow",kernel,RPS to CPU 1,1,560000,621,,8000000,9000000,,,,,"other placement, collapsed: delivered 621 pps of 560 kpps offered (0.11%); no counter moved"`,
		`"IPv6 64B UDP, 1 flow",ferryd,on CPU 1,1,550000,330000,`,
		`"` + scNot + `",ferryd,,,,,,,,,,,,not built yet`,
	} {
		if !strings.Contains(string(b), w) {
			t.Errorf("CSV lacks %q:\n%s", w, b)
		}
	}
}

// Every scenario of the run is described well enough for the runner and
// the table: a runner for its kind, entrants or a reason it has none, a
// name of its own, and every entrant a known contender.
func TestScenarioDescriptions(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range allScenarios() {
		if seen[sc.name] {
			t.Errorf("%q: two scenarios share the name", sc.name)
		}
		seen[sc.name] = true
		if kinds[sc.measures] == nil {
			t.Errorf("%q: no runner for its kind", sc.name)
		}
		if len(sc.entrants) == 0 && sc.notBuilt == "" {
			t.Errorf("%q: no entrants and not marked not built", sc.name)
		}
		for _, e := range sc.entrants {
			if _, ok := contenderRigs[e.contender]; !ok {
				t.Errorf("%q: unknown contender %q", sc.name, e.contender)
			}
		}
		if sc.ownBaseline != "" && !seen[sc.ownBaseline] {
			t.Errorf("%q: compared with %q, which does not run before it", sc.name, sc.ownBaseline)
		}
		if sc.gen.rateOf != "" && !seen[sc.gen.rateOf] {
			t.Errorf("%q: paced from %q, which does not run before it", sc.name, sc.gen.rateOf)
		}
	}
}
