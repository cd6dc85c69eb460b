package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

const (
	scFull = "64B UDP, 65536 flows, full table"
	scRSS  = "ferryd RSS"
)

// tableScenarios: the full routing table (the IPv4 prefixes of -table,
// via B) in the kernel and ferryd, and ferryd's memory before and after.
// The table stays loaded for the rest of the run, so these come last.
var tableScenarios = []scenario{
	{name: scRSS + ", connected routes only", measures: kindRSS, entrants: []entrant{{ferryd, onCPU1}}},
	{name: scFull, measures: kindPPS, needsTable: true, setup: loadFullTable,
		entrants: entrants(kernelAtBest, []entrant{{ferryd, onCPU1}, {ferrySingle, onCPU1}}),
		gen:      genSpec{size: 64, flows: 65536}, ownBaseline: sc64Flows, sameTrials: ferrySingle,
		target: &target{ratio: 0.95}},
	{name: scRSS + ", full table", measures: kindRSS, needsTable: true, entrants: []entrant{{ferryd, onCPU1}}},
	{name: "ferryd RSS, 1,000,000 NAT sessions", measures: kindRSS, notBuilt: "the NAT issue"},
}

// loadFullTable installs the table in the kernel's router and ferryd's.
func loadFullTable(r *runner) error {
	routes, err := kernelBatch(r.o.table)
	if err != nil {
		return err
	}
	defer os.Remove(routes)
	for _, name := range []string{kernel, ferryd} {
		c := r.contenders[name]
		if err := loadTable(c.rig.rig, c.f, r.o.table, routes); err != nil {
			return err
		}
	}
	return nil
}

func runRSS(r *runner, sc *scenario) error {
	for _, e := range sc.entrants {
		c, err := r.ensure(e, sc)
		if err != nil {
			return err
		}
		r.results = append(r.results, result{scenario: sc.name, contender: e.contender, placement: e.place.name, kind: kindRSS, rssMiB: rss(c.f)})
	}
	return nil
}

// kernelBatch writes the IPv4 prefixes of the table file as an `ip -batch`
// script for the kernel contender.
func kernelBatch(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	var rd io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return "", err
		}
		rd = gz
	}
	tmp, err := os.CreateTemp("", "ferrybench-routes")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.Contains(p, ":") || strings.HasPrefix(p, "#") {
			continue
		}
		fmt.Fprintf(w, "route add %s via %s proto static\n", p, lab.AddrB)
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return tmp.Name(), errors.Join(sc.Err(), tmp.Close())
}

// loadTable installs the full table in the router under test.
func loadTable(rig *lab.Rig, f *lab.Ferryd, table, kernelRoutes string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	if f == nil {
		if out, err := rig.R.Run(ctx, "ip", "-batch", kernelRoutes); err != nil {
			return fmt.Errorf("ip -batch: %v: %s", err, out)
		}
		fmt.Printf("      kernel: full table loaded with ip -batch in %.1fs\n", time.Since(t0).Seconds())
		return nil
	}
	out, err := f.Ctl(ctx, "route", "load", table, "via", lab.AddrB)
	if err != nil {
		return err
	}
	fmt.Printf("      ferryd: %s", out)
	return nil
}

// rss is ferryd's resident memory in MiB.
func rss(f *lab.Ferryd) float64 {
	if f == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.Proc.Cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
