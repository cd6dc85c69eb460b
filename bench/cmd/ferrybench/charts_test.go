package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestChartsDrawEveryFigure(t *testing.T) {
	rs := []result{
		{scenario: sc64, contender: "kernel", delivered: []float64{5e5}, routerNs: []float64{1800}},
		{scenario: sc64, contender: "ferryd", delivered: []float64{5.5e5}, routerNs: []float64{1700}},
		{scenario: scLatIdle, contender: "kernel", kind: kindRTT, rttP50: 0.005, rttP99: 0.02},
		{scenario: scLatIdle, contender: "ferryd poll mode", kind: kindRTT, rttP50: 0.02, rttP99: 0.1},
		{scenario: scV6, contender: "kernel", delivered: []float64{4e5}, routerNs: []float64{2100}},
	}
	dir := t.TempDir()
	if err := charts(rs, dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"delivered.png", "cpu.png", "latency-p50.png", "latency-p99.png"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
			t.Errorf("%s is %v", name, b)
		}
	}
}
