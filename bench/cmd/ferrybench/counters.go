package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ferry-router/ferry/dataplane"
	"github.com/ferry-router/ferry/internal/lab"
)

// counters are the packet counters along the path, read before and after
// a trial: where frames went when they did not reach the sink. Keys name
// the place ("R r0 rx_dropped", "ferryd r0 rx_ring_full").
type counters map[string]uint64

// readCounters reads the router's and the sink's link counters and, for
// ferryd, its per-port packets and drops by reason. A counter that cannot
// be read is left out: the trial's figures stand without it.
func readCounters(ctx context.Context, c *contender) counters {
	k := counters{}
	links := func(who string, ns *lab.Netns, devs ...string) {
		out, err := ns.Run(ctx, "ip", "-j", "-s", "link", "show")
		if err != nil {
			return
		}
		var ls []struct {
			Name  string `json:"ifname"`
			Stats struct {
				RX struct{ Packets, Dropped uint64 } `json:"rx"`
				TX struct{ Packets, Dropped uint64 } `json:"tx"`
			} `json:"stats64"`
		}
		if json.Unmarshal(out, &ls) != nil {
			return
		}
		for _, l := range ls {
			for _, d := range devs {
				if l.Name == d {
					p := who + " " + d + " "
					k[p+"rx"], k[p+"rx_dropped"] = l.Stats.RX.Packets, l.Stats.RX.Dropped
					k[p+"tx"], k[p+"tx_dropped"] = l.Stats.TX.Packets, l.Stats.TX.Dropped
				}
			}
		}
	}
	links("R", c.rig.rig.R, "r0", "r1")
	links("sink", c.rig.rig.B, "eth0")
	if c.f != nil {
		if out, err := c.f.Ctl(ctx, "-j", "show", "interfaces"); err == nil {
			var ps []dataplane.InterfaceStatus
			if json.Unmarshal(out, &ps) == nil {
				for _, p := range ps {
					k["ferryd "+p.Name+" rx"], k["ferryd "+p.Name+" tx"] = p.RxPackets, p.TxPackets
					for reason, n := range p.Drops {
						k["ferryd "+p.Name+" "+reason] = n
					}
				}
			}
		}
	}
	return k
}

// addCounters adds the trial's increments (after - before) to the row's.
func (r *result) addCounters(before, after counters) {
	if r.ctr == nil {
		r.ctr = counters{}
	}
	for key, v := range after {
		if v >= before[key] {
			r.ctr[key] += v - before[key]
		}
	}
}

// String lists the non-zero counters, sorted, compactly.
func (k counters) String() string {
	var keys []string
	for key, v := range k {
		if v != 0 {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, key := range keys {
		parts[i] = fmt.Sprintf("%s %d", key, k[key])
	}
	return strings.Join(parts, ", ")
}

// sum adds the counters whose key ends in suffix (" rx_ring_full" over
// every port).
func (k counters) sum(suffix string) uint64 {
	var n uint64
	for key, v := range k {
		if strings.HasSuffix(key, suffix) {
			n += v
		}
	}
	return n
}
