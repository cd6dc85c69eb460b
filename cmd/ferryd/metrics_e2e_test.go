package main_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

// metricValue finds one sample in a Prometheus text scrape: name{labels} v.
func metricValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(scrape)
	if m == nil {
		t.Fatalf("no %s in scrape:\n%s", series, scrape)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// TestFerrydMetrics scrapes ferryd's Prometheus endpoint with curl from
// inside R (the endpoint is served by R's kernel on its loopback: ferry's
// own port addresses belong to ferry's dataplane) after pings through ferry,
// and checks the port counters against ferryctl show interfaces. Then a
// listen address R's kernel does not have must stop ferryd's start with a
// file:line error.
func TestFerrydMetrics(t *testing.T) {
	needTools(t, "curl")
	const listen = "127.0.0.1:9108"
	r, f := ferryRig(t, lab.FerryConfig{Extra: "[metrics]\nlisten = \"" + listen + "\"\n"}, nil)

	const pings = 20
	checkPing(t, r.A, lab.AddrB) // 20 pings A -> B through ferry, all answered

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.R.Run(ctx, "curl", "-sS", "--fail", "--max-time", "10", "http://"+listen+"/metrics")
	if err != nil {
		t.Fatalf("curl in R: %v\n%s", err, out)
	}
	scrape := string(out)
	js, err := f.Ctl(ctx, "-j", "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	var ifs []struct {
		Name      string `json:"name"`
		RxPackets uint64 `json:"rx_packets"`
		TxPackets uint64 `json:"tx_packets"`
	}
	if err := json.Unmarshal(js, &ifs); err != nil {
		t.Fatalf("show interfaces -j: %v\n%s", err, js)
	}
	ctl := map[string][2]uint64{}
	for _, i := range ifs {
		ctl[i.Name] = [2]uint64{i.RxPackets, i.TxPackets}
	}

	// The scrape came first, so it may trail ferryctl by the few frames
	// (ARP, a late echo) that arrived in between, never lead it.
	const margin = 10
	for _, c := range []struct {
		series string
		ctl    uint64
	}{
		{`ferry_port_rx_packets_total{port="r0"}`, ctl["r0"][0]},
		{`ferry_port_tx_packets_total{port="r0"}`, ctl["r0"][1]},
		{`ferry_port_rx_packets_total{port="r1"}`, ctl["r1"][0]},
		{`ferry_port_tx_packets_total{port="r1"}`, ctl["r1"][1]},
	} {
		v := metricValue(t, scrape, c.series)
		t.Logf("%s %v (ferryctl %d)", c.series, v, c.ctl)
		if v < pings {
			t.Errorf("%s = %v, want at least the %d pings", c.series, v, pings)
		}
		if v > float64(c.ctl) || float64(c.ctl)-v > margin {
			t.Errorf("%s = %v, ferryctl show interfaces says %d (margin %d)", c.series, v, c.ctl, margin)
		}
	}
	for _, series := range []string{
		`ferry_port_rx_bytes_total{port="r0"}`, `ferry_port_tx_bytes_total{port="r1"}`,
		`ferry_worker_batches_total{worker="0"}`, `ferry_worker_packets_total{worker="1"}`,
		`ferry_fib_prefixes{table="main"}`, `ferry_conntrack_capacity`, `ferry_conntrack_entries`,
		`ferry_nat_mappings`, `ferry_filter_rules`,
	} {
		metricValue(t, scrape, series)
	}
	var batches, packets float64
	for _, w := range []string{"0", "1", "control"} {
		batches += metricValue(t, scrape, `ferry_worker_batches_total{worker="`+w+`"}`)
		packets += metricValue(t, scrape, `ferry_worker_packets_total{worker="`+w+`"}`)
	}
	if rx := metricValue(t, scrape, `ferry_port_rx_packets_total{port="r0"}`) + metricValue(t, scrape, `ferry_port_rx_packets_total{port="r1"}`); packets < rx || batches < 1 {
		t.Errorf("workers: %v packets in %v batches, ports received %v", packets, batches, rx)
	}
	var neigh float64
	for _, m := range regexp.MustCompile(`(?m)^ferry_neighbors\{state="[A-Z]+"\} (\S+)$`).FindAllStringSubmatch(scrape, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		neigh += v
	}
	if neigh < 2 {
		t.Errorf("ferry_neighbors sums to %v, want A and B at least:\n%s", neigh, grepLines(scrape, "ferry_neighbors"))
	}
	stopFerry(t, f)

	// Shut down with ferryd: nothing listens any more.
	if out, err := r.R.Run(ctx, "curl", "-sS", "--max-time", "2", "http://"+listen+"/metrics"); err == nil {
		t.Errorf("metrics still served after ferryd stopped:\n%.200s", out)
	}

	// 192.0.2.1 is ferry's, not R's kernel's: the endpoint cannot bind it,
	// and ferryd must not start.
	ferryd, ferryctl := binaries(t)
	f2, err := r.StartFerryd(ferryd, ferryctl, t.TempDir(), lab.FerryConfig{Workers: 2, Extra: "[metrics]\nlisten = \"" + lab.AddrR0 + ":9108\"\n"})
	if err == nil {
		f2.Stop()
		t.Fatalf("ferryd started with metrics.listen on an address R's kernel does not have")
	}
	if !strings.Contains(err.Error(), "metrics.listen: metrics listen "+lab.AddrR0+":9108") || !strings.Contains(err.Error(), "cannot assign requested address") {
		t.Errorf("start error does not say why:\n%v", err)
	}
	t.Logf("bad listen address, as expected: %s", firstLine(err.Error(), "metrics.listen"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
