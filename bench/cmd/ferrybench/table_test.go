package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The kernel's IPv6 rows carry figures in the Markdown table and the CSV;
// ferryd's say not built yet and why, with no figure of any kind.
func TestIPv6RowsInTableAndCSV(t *testing.T) {
	rs := []result{
		{scenario: sc64, contender: "kernel", offered: []float64{6e5}, delivered: []float64{5e5}, machineNs: []float64{3000}, routerNs: []float64{1900}},
		{scenario: scV6, contender: "kernel", offered: []float64{5.5e5}, delivered: []float64{4.4e5}, machineNs: []float64{3300}, routerNs: []float64{2100}},
		{scenario: scV6, contender: "ferryd", kind: kindNotBuilt, note: "ferryd's dataplane forwards IPv4 only"},
	}
	o := opts{trials: 1, duration: 2 * time.Second, warmup: time.Second, out: t.TempDir()}
	md := table(rs, o)
	want := []string{
		"| IPv6 64B UDP, 1 flow | kernel | 550 kpps | 440 kpps | 0 pps | 20.0% |  | 2100 | 3300 |",
		"| IPv6 64B UDP, 1 flow | ferryd | not built yet (ferryd's dataplane forwards IPv4 only) | | | | | | | | | |",
		"Ip6InAddrErrors",
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("table lacks %q:\n%s", w, md)
		}
	}
	if err := save(rs, md, o); err != nil {
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
	for _, w := range []string{`"IPv6 64B UDP, 1 flow",kernel,1,550000,440000,,2100,3300,`, `"IPv6 64B UDP, 1 flow",ferryd,,,,,,,,,,,not built yet`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("CSV lacks %q:\n%s", w, b)
		}
	}
}
