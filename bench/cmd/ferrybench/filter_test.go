package main

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/filter"
)

// The filter rows' rulesets load in ferryd's filter, and every frame the
// generator sends for them (and for the most flows it offers anywhere)
// passes every drop rule and reaches the final counter accept, while a
// packet a drop rule names is dropped: the rules are live, and the
// generator's traffic matches none of them.
func TestFilterRulesMatchNothingGenerated(t *testing.T) {
	src, dst, err := genAddrs("", bench.SinkAddr, false)
	if err != nil {
		t.Fatal(err)
	}
	spec := bench.FrameSpec{Src: src, Dst: dst, Size: 64, DstPort: genDstPort}
	pkt := func(flow int) filter.Packet {
		f := spec.Frame(flow)
		ip := f[14:]
		p := filter.Packet{Family: 4, IIf: -1, OIf: -1, L4Proto: ip[9], HasPorts: true, Length: uint32(binary.BigEndian.Uint16(ip[2:]))}
		p.Src[10], p.Src[11], p.Dst[10], p.Dst[11] = 0xff, 0xff, 0xff, 0xff
		copy(p.Src[12:], ip[12:16])
		copy(p.Dst[12:], ip[16:20])
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(ip[20:]), binary.BigEndian.Uint16(ip[22:])
		return p
	}
	for _, n := range []int{10, 1000, 10000} {
		prog, err := filter.Load("rules.nft", filterRules(n), filter.Env{})
		if err != nil {
			t.Fatalf("%d rules: %v", n, err)
		}
		ctr := prog.NewCounters()
		flows := []int{0, 1, 999, 64000, 1000000 - 1}
		for _, fl := range flows {
			p := pkt(fl)
			if res := prog.Eval(filter.HookForward, &p, ctr, 0); res.Action != filter.ActAccept {
				t.Errorf("%d rules: flow %d (port %d -> %d) %v", n, fl, p.SrcPort, p.DstPort, res.Action)
			}
		}
		l := prog.Listing(ctr)
		if got := strings.Count(l, " drop\n"); got != n {
			t.Errorf("%d rules: listing has %d drop rules", n, got)
		}
		if want := "counter packets 5 bytes 230 accept"; !strings.Contains(l, want) {
			t.Errorf("%d rules: want %q in the listing:\n%.500s", n, want, l[max(0, len(l)-500):])
		}
		last := n - 1
		p := pkt(0)
		p.Src[15], p.DstPort = byte(last%256), uint16(1000+last)
		copy(p.Src[12:15], []byte{203, 0, 113})
		if res := prog.Eval(filter.HookForward, &p, ctr, 0); res.Action != filter.ActDrop {
			t.Errorf("%d rules: the packet of the last rule: %v", n, res.Action)
		}
	}
}

// A filter or masquerade row writes ferryd's ruleset into the run's folder
// and names it by absolute path in a [ruleset] table, one file per
// scenario, so two rows' configs differ and ferryd restarts between them.
func TestFerryExtraRuleset(t *testing.T) {
	r := &runner{dir: t.TempDir()}
	var xs []string
	for _, sc := range rateScenarios {
		if sc.ferryNft == "" {
			continue
		}
		x, err := r.ferryExtra(&sc)
		if err != nil {
			t.Fatal(err)
		}
		const pre = "[ruleset]\nfile = \""
		if !strings.HasPrefix(x, pre) || !strings.HasPrefix(x[len(pre):], r.dir+"/") {
			t.Fatalf("%s: extra config %q", sc.name, x)
		}
		path := strings.TrimSuffix(x[len(pre):], "\"\n")
		b, err := os.ReadFile(path)
		if err != nil || string(b) != sc.ferryNft {
			t.Errorf("%s: %s holds %d bytes (%v), want its ruleset", sc.name, path, len(b), err)
		}
		xs = append(xs, x)
	}
	if len(xs) != 4 || len(map[string]bool{xs[0]: true, xs[1]: true, xs[2]: true, xs[3]: true}) != 4 {
		t.Errorf("filter and masquerade rows' extra configs: %q", xs)
	}
	if sc := (scenario{name: sc64, ferry: "x"}); mustExtra(t, r, &sc) != "x" {
		t.Error("a row without a ruleset changed its ferry config")
	}
}

func mustExtra(t *testing.T, r *runner, sc *scenario) string {
	x, err := r.ferryExtra(sc)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// ferryd at 1,000 rules is judged against the kernel at 1,000; ferryd at
// 10,000 against its own row at 10, a row run earlier.
func TestFilterTargets(t *testing.T) {
	var scs []scenario
	for _, sc := range rateScenarios {
		if strings.Contains(sc.name, "filter rules") {
			scs = append(scs, sc)
		}
	}
	pps := func(sc, c string, p placement, del float64) result {
		return result{scenario: sc, contender: c, placement: p.name, kind: kindPPS, offered: []float64{6e5}, delivered: []float64{del}}
	}
	rs := []result{
		pps(scRules10, ferryd, onCPU1, 5e5),
		pps(scRules, kernel, rpsOff, 8e4), pps(scRules, kernel, rpsCPU1, 6e4), pps(scRules, ferryd, onCPU1, 4.9e5),
		pps(scRules10k, ferryd, onCPU1, 4.6e5),
	}
	rows := report(scs, rs)
	if err := failures(rows); err != nil {
		t.Fatal(err)
	}
	md := markdown(rows, opts{duration: time.Second})
	for _, w := range []string{
		"| " + scRules10 + " | ferryd | on CPU 1 | 600 kpps | 500 kpps |",
		"| 6.12× | ≥ 5.0× kernel | yes |",
		"| 0.92× own " + scRules10 + " | ≥ 0.90× own " + scRules10 + " | yes |",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("table lacks %q:\n%s", w, md)
		}
	}
	if strings.Contains(md, "not built") {
		t.Errorf("a filter row is still marked not built:\n%s", md)
	}
	rs[4].delivered[0] = 4e5
	if md := markdown(report(scs, rs), opts{}); !strings.Contains(md, "| 0.80× own "+scRules10+" | ≥ 0.90× own "+scRules10+" | no |") {
		t.Errorf("10,000 rules at 0.8× of 10 met its target:\n%s", md)
	}
	// A failed baseline gives no ratio; the failed row fails the run.
	rs[0].delivered[0] = 100
	rows = report(scs, rs)
	if md := markdown(rows, opts{}); strings.Contains(md, "× own") {
		t.Errorf("ratio to a failed rig:\n%s", md)
	}
	if err := failures(rows); err == nil || !strings.Contains(err.Error(), scRules10) {
		t.Errorf("failures = %v", err)
	}
}
