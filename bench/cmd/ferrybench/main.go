// Command ferrybench runs ferry's benchmark: the kernel and ferryd forward
// the same generated traffic across the same namespace rig, and the table
// it prints compares them.
//
//	gen (CPU 0) ── r0 [R: router under test] r1 ── sink
//
// The generator runs pinned to CPU 0. The kernel runs in each placement
// that can win (scenario.go) and is judged by the better; ferryd's
// threads are pinned to CPU 1 for packet rates. Each contender has a rig
// of its own, built at the start, so trials alternate between them.
//
// The scenarios are described in one list per kind (rate.go, latency.go,
// tcp.go, tables.go); report.go writes the table, the CSV and the notes
// (notes.md) from those descriptions; judge.go turns a contender that
// delivers next to nothing into a failed run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		if err := runProbe(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "ferrybench probe:", err)
			os.Exit(1)
		}
		return
	}
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

// kinds maps what a scenario measures to the runner that measures it.
var kinds = map[kind]func(*runner, *scenario) error{
	kindPPS:  runRate,
	kindRTT:  runLatency,
	kindGbps: runTCP,
	kindRSS:  runRSS,
}

// allScenarios is the run, in order. Tables come last: the full table
// they load stays in the routers for the rest of the run.
func allScenarios() []scenario {
	return entriesOf(rateScenarios, latencyScenarios, tcpScenarios, tableScenarios)
}

func entriesOf(lists ...[]scenario) []scenario {
	var out []scenario
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
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
	table    string // full routing table file ("" = skip)
	only     string // run only scenarios whose name contains this
}

func run() error {
	quick := flag.Bool("quick", false, "one short trial per scenario (under 4 minutes)")
	verbose = flag.Bool("v", false, "print ferryd's counters after each scenario")
	out := flag.String("out", "bench/results", "folder for the Markdown, CSV and PNG results")
	ferrydBin := flag.String("ferryd", "bin/ferryd", "ferryd binary")
	ferryctlBin := flag.String("ferryctl", "bin/ferryctl", "ferryctl binary")
	tableFile := flag.String("table", "../shared/data/bgp-full-table-prefixes.txt.gz", "full routing table (a prefix a line, gzip ok); skipped if missing")
	only := flag.String("only", "", "run only the scenarios whose name contains one of these |-separated strings (for A/B runs)")
	trials := flag.Int("trials", 0, "trials per scenario (default 3, or 1 with -quick)")
	flag.Parse()
	o := opts{trials: 3, duration: 5 * time.Second, warmup: time.Second, probes: 1000, ferryd: *ferrydBin, ferryctl: *ferryctlBin, out: *out, only: *only}
	if *quick {
		o.trials, o.duration, o.probes = 1, 2*time.Second, 300
	}
	if *trials > 0 {
		o.trials = *trials
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
	if abs, err := filepath.Abs(*tableFile); err == nil {
		if _, err := os.Stat(abs); err == nil {
			o.table = abs
		}
	}
	if err := lab.Available(); err != nil {
		return err
	}
	r := &runner{o: o, ctx: context.Background(), contenders: map[string]*contender{}}
	// One cleanup, whoever gets there first: a signal makes the running
	// trial fail (its namespaces vanish), and run's return must then wait
	// for the signal handler to finish, not exit halfway through it.
	var cleanup sync.Once
	removeLabs := func() {
		cleanup.Do(func() {
			for _, l := range r.labs {
				l.Close()
			}
		})
	}
	defer removeLabs()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "ferrybench: %v: removing the namespaces\n", s)
		removeLabs()
		os.Exit(130)
	}()
	dir, err := os.MkdirTemp("", "ferrybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.dir = dir
	if err := r.build(); err != nil {
		return err
	}
	defer r.stopAll()

	var scs []scenario
	for _, sc := range allScenarios() {
		if (sc.needsTable && o.table == "") || !selected(sc.name, o.only) {
			continue
		}
		scs = append(scs, sc)
	}
	r.started = time.Now()
	for i := range scs {
		sc := &scs[i]
		if len(sc.entrants) == 0 {
			continue
		}
		r.retire(scs[i:])
		r.step++
		fmt.Printf("[%d/%d] %-50s elapsed %s\n", r.step, countRuns(scs), sc.name, time.Since(r.started).Round(time.Second))
		if err := kinds[sc.measures](r, sc); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	if err := r.stopAll(); err != nil {
		return err
	}
	rep := report(scs, r.results)
	md := markdown(rep, o)
	fmt.Println()
	fmt.Print(md)
	if err := save(rep, md, o); err != nil {
		return err
	}
	return failures(rep)
}

// selected reports whether name contains one of only's |-separated parts.
func selected(name, only string) bool {
	for _, part := range strings.Split(only, "|") {
		if strings.Contains(name, part) {
			return true
		}
	}
	return false
}

func countRuns(scs []scenario) int {
	n := 0
	for _, sc := range scs {
		if len(sc.entrants) > 0 {
			n++
		}
	}
	return n
}
