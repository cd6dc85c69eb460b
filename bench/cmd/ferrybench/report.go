package main

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

// result is what one contender in one placement measured in a scenario.
type result struct {
	scenario, contender, placement string
	kind                           kind
	offered, delivered             []float64 // per trial, packets/s
	invalid                        uint64
	ferryNs, machineNs             []float64 // CPU ns per delivered packet
	routerNs                       []float64 // CPU 1 (the router's core) ns per delivered packet
	probes, replies                int
	rttP50, rttP99                 float64   // ms
	gbps                           []float64 // per trial
	rssMiB                         float64
	ctr                            counters // increments over the trials
	note                           string
}

// row is a line of the table: the kernel at its best placement (its other
// placements in others, for the CSV and a mention), or another contender
// in one placement, or a contender whose feature is not built yet.
type row struct {
	result
	others   []result
	notBuilt string
	failed   string // the judge's verdict: why the rig failed
	vs       string // comparison with the kernel's best, or the baseline
	want     string // target
	met      string
	label    string // for charts: contender, and placement when it has several
}

// better reports whether a beats b for the kernel's choice of placement.
func better(a, b result) bool {
	switch a.kind {
	case kindRTT:
		if (a.replies > 0) != (b.replies > 0) {
			return a.replies > 0
		}
		return a.rttP50 < b.rttP50
	case kindGbps:
		am, _ := bench.MedianSpread(a.gbps)
		bm, _ := bench.MedianSpread(b.gbps)
		return am > bm
	}
	am, _ := bench.MedianSpread(a.delivered)
	bm, _ := bench.MedianSpread(b.delivered)
	return am > bm
}

// bestKernel is the kernel's best placement in scenario.
func bestKernel(rs []result, scenario string) (result, bool) {
	var best result
	found := false
	for _, r := range rs {
		if r.scenario == scenario && r.contender == kernel && (!found || better(r, best)) {
			best, found = r, true
		}
	}
	return best, found
}

// ownRow is r's contender's row, in r's placement, in scenario, if it
// stands (the judge did not find its rig failed).
func ownRow(rs []result, scenario string, r result) (result, bool) {
	for _, b := range rs {
		if b.scenario == scenario && b.contender == r.contender && b.placement == r.placement {
			return b, verdict(b) == ""
		}
	}
	return result{}, false
}

// report turns the results into the table's rows, scenario by scenario in
// the order they ran, judging each and comparing it as its scenario says.
func report(scs []scenario, rs []result) []row {
	var rows []row
	for i := range scs {
		sc := &scs[i]
		var these []row
		if k, ok := bestKernel(rs, sc.name); ok {
			kr := row{result: k, label: kernel + " (best placement)"}
			for _, r := range rs {
				if r.scenario == sc.name && r.contender == kernel && r.placement != k.placement {
					kr.others = append(kr.others, r)
				}
			}
			these = append(these, kr)
		}
		places := map[string]int{}
		for _, e := range sc.entrants {
			places[e.contender]++
		}
		for _, r := range rs {
			if r.scenario == sc.name && r.contender != kernel {
				label := r.contender
				if places[r.contender] > 1 {
					label += " (" + r.placement + ")"
				}
				these = append(these, row{result: r, label: label})
			}
		}
		if sc.notBuilt != "" {
			these = append(these, row{result: result{scenario: sc.name, contender: ferryd, kind: sc.measures}, notBuilt: sc.notBuilt})
		}
		for j := range these {
			if these[j].notBuilt == "" {
				these[j].failed = verdict(these[j].result)
			}
		}
		for j := range these {
			compare(sc, &these[j], these, rs)
		}
		rows = append(rows, these...)
	}
	return rows
}

// compare fills a row's comparison and target columns.
func compare(sc *scenario, rw *row, these []row, rs []result) {
	if rw.notBuilt != "" || rw.failed != "" {
		return
	}
	var k *row
	for j := range these {
		if these[j].contender == kernel && these[j].failed == "" {
			k = &these[j]
		}
	}
	judged := (rw.contender == ferryd || rw.contender == ferryPoll) && sc.target != nil
	switch rw.kind {
	case kindPPS, kindGbps:
		val := func(r result) float64 {
			xs := r.delivered
			if r.kind == kindGbps {
				xs = r.gbps
			}
			m, _ := bench.MedianSpread(xs)
			return m
		}
		var parts []string
		if rw.contender != kernel && rw.contender != sc.sameTrials && k != nil && val(k.result) > 0 {
			ratio := val(rw.result) / val(k.result)
			parts = append(parts, fmt.Sprintf("%.2f×", ratio))
			if judged && sc.sameTrials == "" && sc.target.ratio > 0 && !sc.target.vsOwnBaseline {
				rw.addTarget(fmt.Sprintf("≥ %.1f× kernel", sc.target.ratio), yes(ratio >= sc.target.ratio))
			}
		}
		if sc.ownBaseline != "" && rw.contender == kernel {
			if b, ok := bestKernel(rs, sc.ownBaseline); ok && val(b) > 0 {
				parts = append(parts, fmt.Sprintf("%.2f× own %s", val(rw.result)/val(b), sc.ownBaseline))
			}
		}
		if sc.ownBaseline != "" && rw.contender != kernel && sc.sameTrials == "" {
			b, ok := ownRow(rs, sc.ownBaseline, rw.result)
			if judged && sc.target.ownRatio > 0 && (!ok || val(b) <= 0) {
				// A bound with no baseline to judge by (not run with
				// -only, or its rig failed) leaves the row unjudged.
				rw.addTarget(fmt.Sprintf("≥ %.2f× own %s (no baseline)", sc.target.ownRatio, sc.ownBaseline), unjudged)
			}
			if ok && val(b) > 0 {
				ratio := val(rw.result) / val(b)
				parts = append(parts, fmt.Sprintf("%.2f× own %s", ratio, sc.ownBaseline))
				if judged && sc.target.vsOwnBaseline && sc.target.ratio > 0 {
					rw.addTarget(fmt.Sprintf("≥ %.2f× own %s", sc.target.ratio, sc.ownBaseline), yes(ratio >= sc.target.ratio))
				}
				if judged && sc.target.ownRatio > 0 {
					rw.addTarget(fmt.Sprintf("≥ %.2f× own %s", sc.target.ownRatio, sc.ownBaseline), yes(ratio >= sc.target.ownRatio))
				}
			}
		}
		if sc.sameTrials != "" && rw.contender == ferryd {
			for _, b := range these {
				if b.contender == sc.sameTrials && b.failed == "" && val(b.result) > 0 {
					ratio := val(rw.result) / val(b.result)
					parts = append(parts, fmt.Sprintf("%.2f× %s (same trials)", ratio, sc.sameTrials))
					if judged && sc.target.ratio > 0 {
						rw.want, rw.met = fmt.Sprintf("≥ %.2f× %s", sc.target.ratio, sc.sameTrials), yes(ratio >= sc.target.ratio)
					}
				}
			}
		}
		rw.vs = strings.Join(parts, ", ")
	case kindRTT:
		if rw.contender != kernel && k != nil {
			d := (rw.rttP50 - k.rttP50) * 1000
			rw.vs = fmt.Sprintf("%+.0f µs", d)
			if judged && sc.target.p50Within > 0 {
				w := float64(sc.target.p50Within.Microseconds())
				rw.want, rw.met = fmt.Sprintf("p50 within %.0f µs of kernel", w), yes(d <= w)
			}
		}
		if judged && sc.target.noLoss {
			full := rw.ctr.sum(" rx_ring_full")
			rw.want = "no probe lost, rx_ring_full 0"
			rw.met = yes(rw.replies == rw.probes && full == 0)
		}
	}
}

// addTarget adds a bound to the row's target column. The row meets its
// target when it meets every bound; one it misses makes it "no", one that
// could not be judged (no baseline) "unjudged".
func (rw *row) addTarget(want, met string) {
	if rw.want == "" {
		rw.want, rw.met = want, met
		return
	}
	rw.want += "; " + want
	if rw.met != "no" && met != "yes" {
		rw.met = met
	}
}

// unjudged is the met column of a bound there was nothing to judge by.
const unjudged = "unjudged"

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

//go:embed notes.md
var notesTemplate string

var notes = template.Must(template.New("notes").Parse(notesTemplate))

// notesData is what notes.md may quote.
type notesData struct {
	SinkAddr, SinkAddr6, GenSrc, GenSrc6 string
	RouterR1                             string
	GenDstPort                           int
	MinSharePct                          float64
	RPSOff, RPSCPU1                      string
}

// markdown is the results table, then the notes on how it was measured.
func markdown(rows []row, o opts) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "ferry benchmark — %s, %d trial(s) of %v after %v warm-up, host %s, %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), o.trials, o.duration, o.warmup, host, cpuModel())
	b.WriteString("| scenario | contender | placement | offered | delivered (median) | spread | loss | ferryd CPU ns/pkt | CPU 1 ns/pkt | machine CPU ns/pkt | vs kernel | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, rw := range rows {
		b.WriteString(tableLine(rw))
	}
	b.WriteString("\n")
	if err := notes.Execute(&b, notesData{SinkAddr: bench.SinkAddr, SinkAddr6: bench.SinkAddr6, GenSrc: lab.AddrA, GenSrc6: genSrc6, RouterR1: lab.AddrR1, GenDstPort: genDstPort,
		MinSharePct: 100 * minShare, RPSOff: rpsOff.name, RPSCPU1: rpsCPU1.name}); err != nil {
		fmt.Fprintf(&b, "(notes: %v)\n", err)
	}
	return b.String()
}

// placementCell names the placement and, for the kernel, what its other
// placements gave.
func placementCell(rw row) string {
	s := rw.placement
	var alts []string
	for _, o := range rw.others {
		alts = append(alts, o.placement+": "+figure(o))
	}
	if len(alts) > 0 {
		s += " (best; " + strings.Join(alts, "; ") + ")"
	}
	return s
}

// figure is a result's headline figure, short.
func figure(r result) string {
	switch r.kind {
	case kindRTT:
		if r.replies == 0 {
			return "no replies"
		}
		return fmt.Sprintf("p50 %.0f µs", r.rttP50*1000)
	case kindGbps:
		m, _ := bench.MedianSpread(r.gbps)
		return fmt.Sprintf("%.2f Gbit/s", m)
	case kindRSS:
		return fmt.Sprintf("%.0f MiB", r.rssMiB)
	}
	m, _ := bench.MedianSpread(r.delivered)
	return bench.FormatRate(m)
}

func tableLine(rw row) string {
	r := rw.result
	if rw.notBuilt != "" {
		return fmt.Sprintf("| %s | %s | | not built yet (%s) | | | | | | | | | |\n", r.scenario, r.contender, rw.notBuilt)
	}
	if rw.failed != "" {
		return fmt.Sprintf("| %s | %s | %s | **FAILED RIG**: %s | | | | | | | | | |\n", r.scenario, r.contender, placementCell(rw), rw.failed)
	}
	switch r.kind {
	case kindRSS:
		return fmt.Sprintf("| %s | %s | %s | | %.0f MiB | | | | | | | | |\n", r.scenario, r.contender, r.placement, r.rssMiB)
	case kindGbps:
		med, spread := bench.MedianSpread(r.gbps)
		return fmt.Sprintf("| %s | %s | %s | | %.2f Gbit/s | %.2f | | | | | %s | %s | %s |\n", r.scenario, r.contender, placementCell(rw), med, spread, rw.vs, rw.want, rw.met)
	case kindRTT:
		note := r.note
		if r.contender != kernel {
			if full := r.ctr.sum(" rx_ring_full"); full > 0 || rw.want != "" {
				note += fmt.Sprintf(", rx_ring_full %d", full)
			}
		}
		return fmt.Sprintf("| %s (%s) | %s | %s | | p50 %.0f µs, p99 %.0f µs | | | | | | %s | %s | %s |\n", r.scenario, note, r.contender, placementCell(rw), r.rttP50*1000, r.rttP99*1000, rw.vs, rw.want, rw.met)
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
	fns1 := ""
	if r.contender != kernel {
		fns1 = fmt.Sprintf("%.0f", fns)
	}
	inv := ""
	if r.invalid > 0 {
		inv = fmt.Sprintf(" (%d invalid!)", r.invalid)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s%s | %s | %.1f%% | %s | %.0f | %.0f | %s | %s | %s |\n",
		r.scenario, r.contender, placementCell(rw), bench.FormatRate(off), bench.FormatRate(del), inv, bench.FormatRate(spread), loss, fns1, rns, mns, rw.vs, rw.want, rw.met)
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

// save writes the Markdown, the CSV (every placement of every contender,
// every trial) and the charts.
func save(rows []row, md string, o opts) error {
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
	w.Write([]string{"scenario", "contender", "placement", "trial", "offered_pps", "delivered_pps", "ferryd_cpu_ns_per_pkt", "cpu1_ns_per_pkt", "machine_cpu_ns_per_pkt", "rtt_p50_ms", "rtt_p99_ms", "tcp_gbps", "rss_mib", "status"})
	for _, rw := range rows {
		if rw.notBuilt != "" {
			w.Write([]string{rw.scenario, rw.contender, "", "", "", "", "", "", "", "", "", "", "", "not built yet"})
			continue
		}
		status := ""
		if rw.contender == kernel {
			status = "best placement"
		}
		if rw.failed != "" {
			status = "FAILED RIG: " + rw.failed
		}
		writeCSV(w, rw.result, status)
		for _, other := range rw.others {
			s := "other placement"
			if v := verdict(other); v != "" {
				s += ", collapsed: " + v
			}
			writeCSV(w, other, s)
		}
	}
	var shown []result
	for _, rw := range rows {
		if rw.notBuilt == "" && rw.failed == "" {
			r := rw.result
			r.contender = rw.label
			shown = append(shown, r)
		}
	}
	if err := charts(shown, filepath.Join(o.out, "charts-"+stamp)); err != nil {
		return fmt.Errorf("charts: %v", err)
	}
	w.Flush()
	fmt.Printf("\nresults written to %s/results-%s.{md,csv} and %s/charts-%s/*.png\n", o.out, stamp, o.out, stamp)
	return w.Error()
}

func writeCSV(w *csv.Writer, r result, status string) {
	switch r.kind {
	case kindRTT:
		w.Write([]string{r.scenario, r.contender, r.placement, "", "", "", "", "", "", fmt.Sprint(r.rttP50), fmt.Sprint(r.rttP99), "", "", joinStatus(r.note, status)})
	case kindRSS:
		w.Write([]string{r.scenario, r.contender, r.placement, "", "", "", "", "", "", "", "", "", fmt.Sprintf("%.1f", r.rssMiB), status})
	case kindGbps:
		for i, g := range r.gbps {
			w.Write([]string{r.scenario, r.contender, r.placement, strconv.Itoa(i + 1), "", "", "", "", "", "", "", fmt.Sprintf("%.3f", g), "", status})
		}
	case kindPPS:
		for i := range r.delivered {
			get := func(xs []float64) string {
				if i < len(xs) {
					return fmt.Sprintf("%.0f", xs[i])
				}
				return ""
			}
			w.Write([]string{r.scenario, r.contender, r.placement, strconv.Itoa(i + 1), get(r.offered), get(r.delivered), get(r.ferryNs), get(r.routerNs), get(r.machineNs), "", "", "", "", status})
		}
	}
}

func joinStatus(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}
