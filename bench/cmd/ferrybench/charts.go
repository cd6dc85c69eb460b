package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/ferry-router/ferry/bench"
)

// charts draws the results a reader would otherwise dig out of the table:
// delivered packets/s, the router core's CPU per packet and latency, each
// as bars for the kernel and ferryd side by side per scenario.
func charts(rs []result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ppsNames, latNames []string
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.scenario] {
			continue
		}
		seen[r.scenario] = true
		switch r.kind {
		case kindPPS:
			ppsNames = append(ppsNames, r.scenario)
		case kindRTT:
			latNames = append(latNames, r.scenario)
		}
	}
	value := func(scenario, contender string, f func(result) float64) float64 {
		for _, r := range rs {
			if r.scenario == scenario && r.contender == contender {
				return f(r)
			}
		}
		return 0
	}
	med := func(xs []float64) float64 { m, _ := bench.MedianSpread(xs); return m }
	type series struct {
		label string
		f     func(result) float64
	}
	draw := func(file, title, ylabel string, names []string, ss []series) error {
		if len(names) == 0 {
			return nil
		}
		// Only the contenders with a figure in this chart get a bar slot,
		// so latency-only rows do not thin out the throughput chart.
		var contenders []string
		in := map[string]bool{}
		for _, name := range names {
			in[name] = true
		}
		for _, r := range rs {
			if in[r.scenario] && !in["\x00"+r.contender] {
				in["\x00"+r.contender] = true
				contenders = append(contenders, r.contender)
			}
		}
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = ylabel
		colors := []color.Color{color.RGBA{90, 90, 90, 255}, color.RGBA{30, 120, 200, 255}, color.RGBA{20, 160, 90, 255},
			color.RGBA{170, 170, 170, 255}, color.RGBA{130, 185, 240, 255}, color.RGBA{130, 215, 165, 255},
			color.RGBA{220, 120, 40, 255}, color.RGBA{240, 190, 130, 255}, color.RGBA{150, 80, 170, 255}, color.RGBA{205, 160, 220, 255}}
		w := vg.Points(12)
		n, nbars := 0, len(ss)*len(contenders)
		top := 0.0
		for _, s := range ss {
			for _, c := range contenders {
				vals := make(plotter.Values, len(names))
				for i, name := range names {
					vals[i] = value(name, c, s.f)
					top = max(top, vals[i])
				}
				bars, err := plotter.NewBarChart(vals, w)
				if err != nil {
					return err
				}
				bars.Color = colors[n%len(colors)]
				bars.LineStyle.Width = 0
				bars.Offset = w * vg.Length(float64(n)-float64(nbars-1)/2)
				p.Add(bars)
				label := c
				if s.label != "" {
					label += " " + s.label
				}
				p.Legend.Add(label, bars)
				n++
			}
		}
		p.Legend.Top = true
		p.Y.Min, p.Y.Max = 0, top*1.45 // room for the legend above the bars
		p.NominalX(names...)
		p.X.Tick.Label.Rotation = 0.35
		p.X.Tick.Label.XAlign = -0.9
		return p.Save(vg.Length(160+float64(nbars)*16*float64(len(names))+40*float64(len(names)))*vg.Points(1), 400, dir+"/"+file)
	}
	if err := draw("delivered.png", "Delivered packets/s (median of trials)", "packets/s", ppsNames,
		[]series{{"", func(r result) float64 { return med(r.delivered) }}}); err != nil {
		return err
	}
	if err := draw("cpu.png", "CPU 1 (router core) ns per delivered packet", "ns/packet", ppsNames,
		[]series{{"", func(r result) float64 { return med(r.routerNs) }}}); err != nil {
		return err
	}
	// p50 and p99 differ by 10-100x here, so each gets its own scale.
	if err := draw("latency-p50.png", "RTT through the router, median", "µs", latNames,
		[]series{{"p50", func(r result) float64 { return r.rttP50 * 1000 }}}); err != nil {
		return fmt.Errorf("latency chart: %w", err)
	}
	if err := draw("latency-p99.png", "RTT through the router, 99th percentile", "µs", latNames,
		[]series{{"p99", func(r result) float64 { return r.rttP99 * 1000 }}}); err != nil {
		return fmt.Errorf("latency chart: %w", err)
	}
	return nil
}
