package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-router/ferry/bench"
)

// minShare is the least a contender must deliver of what was offered (or
// answer of the probes sent) for its figure to be a measurement. Below it
// the rig failed: a wrong placement (RPS on veth collapses on some
// machines), a router that never came up, a generator aimed wrong. Such a
// row must not read as a figure, least of all as a quiet 0 pps.
const minShare = 0.05

// verdict is "" when r's figure stands, or says why the rig failed, with
// the counters that show where the frames went.
func verdict(r result) string {
	var why string
	switch r.kind {
	case kindPPS:
		var off, del float64
		for i := range r.offered {
			off += r.offered[i]
		}
		for i := range r.delivered {
			del += r.delivered[i]
		}
		if del > 0 && del >= minShare*off {
			return ""
		}
		n := float64(max(len(r.offered), 1))
		share := 0.0
		if off > 0 {
			share = 100 * del / off
		}
		why = fmt.Sprintf("delivered %s of %s offered (%.2f%%)", bench.FormatRate(del/n), bench.FormatRate(off/n), share)
	case kindRTT:
		if r.replies > 0 && float64(r.replies) >= minShare*float64(r.probes) {
			return ""
		}
		why = fmt.Sprintf("%d of %d probes answered", r.replies, r.probes)
	case kindGbps:
		if med, _ := bench.MedianSpread(r.gbps); med > 0 {
			return ""
		}
		why = "no TCP throughput"
	case kindRSS:
		if r.rssMiB > 0 {
			return ""
		}
		why = "ferryd's memory could not be read"
	}
	if s := r.ctr.String(); s != "" {
		why += "; counters: " + s
	} else {
		why += "; no counter moved"
	}
	return why
}

// failures is the run's verdict: an error naming every contender whose
// rig failed, so ferrybench (and `make test`, which runs it) exits
// non-zero instead of printing a figure that is not one. The kernel's
// losing placement is not a failure: its best placement is the
// contender.
func failures(rows []row) error {
	var bad []string
	for _, rw := range rows {
		if rw.failed != "" {
			bad = append(bad, fmt.Sprintf("%s / %s (%s): %s", rw.scenario, rw.contender, rw.placement, rw.failed))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return errors.New(fmt.Sprintf("%d row(s) are failed rigs, not figures:\n  ", len(bad)) + strings.Join(bad, "\n  "))
}
