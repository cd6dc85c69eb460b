package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

const (
	scTCP1 = "TCP, 1 stream (iperf3)"
	scTCP8 = "TCP, 8 streams (iperf3)"
)

// TCP between real hosts with their default offloads (GSO frames of up to
// 64 KiB cross the router). ferryd may use both CPUs here, as it would
// deployed.
var tcpAll = entrants(kernelAtBest, []entrant{{ferryd, onCPUBoth}})

var tcpScenarios = []scenario{
	{name: scTCP1, measures: kindGbps, entrants: tcpAll, gen: genSpec{flows: 1}, target: &target{ratio: 0.8}},
	{name: scTCP8, measures: kindGbps, entrants: tcpAll, gen: genSpec{flows: 8}, target: &target{ratio: 0.8}},
	{name: "TUN single stream", measures: kindGbps, notBuilt: "the TUN issue"},
}

// runTCP alternates iperf3 trials between the entrants; gen.flows is the
// number of streams.
func runTCP(r *runner, sc *scenario) error {
	rs := make([]result, len(sc.entrants))
	for t := 0; t < r.o.trials; t++ {
		for i, e := range sc.entrants {
			c, err := r.ensure(e, sc)
			if err != nil {
				return err
			}
			k0 := readCounters(r.ctx, c)
			g, err := tcp(c.rig.rig, sc.gen.flows, r.o)
			if err != nil {
				return fmt.Errorf("%s (%s): %v", e.contender, e.place.name, err)
			}
			rs[i].addCounters(k0, readCounters(r.ctx, c))
			rs[i].scenario, rs[i].contender, rs[i].placement, rs[i].kind = sc.name, e.contender, e.place.name, kindGbps
			rs[i].gbps = append(rs[i].gbps, g)
			fmt.Printf("      trial %d %-32s %.2f Gbit/s\n", t+1, e.contender+" ("+e.place.name+")", g)
		}
	}
	r.results = append(r.results, rs...)
	return nil
}

// tcp runs one iperf3 trial from A to B through the router and returns
// the received rate in Gbit/s.
func tcp(rig *lab.Rig, streams int, o opts) (float64, error) {
	srv, err := rig.B.Start("iperf3", "-s", "-1", "-B", lab.AddrB)
	if err != nil {
		return 0, err
	}
	defer srv.Stop(syscall.SIGTERM, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 100; i++ {
		if out, _ := rig.B.Run(ctx, "ss", "-Hltn", "sport = :5201"); strings.Contains(string(out), "5201") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := rig.A.Run(ctx, "iperf3", "-c", lab.AddrB, "-t", strconv.Itoa(int(o.duration.Seconds())), "-P", strconv.Itoa(streams), "-J")
	if err != nil {
		return 0, err
	}
	var v struct {
		End struct {
			SumReceived struct {
				BitsPerSec float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return 0, fmt.Errorf("iperf3: %v", err)
	}
	return v.End.SumReceived.BitsPerSec / 1e9, nil
}
