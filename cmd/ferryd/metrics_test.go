package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-router/ferry/dataplane"
)

type fakeMetrics struct{}

func (fakeMetrics) Interfaces() []dataplane.InterfaceStatus {
	return []dataplane.InterfaceStatus{
		{Name: "r0", Up: true, RxPackets: 10, RxBytes: 980, TxPackets: 7, TxBytes: 686,
			Drops: map[string]uint64{"no_route": 2, "ttl_exceeded": 1}},
		{Name: "r1", Up: false, Drops: map[string]uint64{}},
	}
}

func (fakeMetrics) Workers() []dataplane.WorkerStatus {
	return []dataplane.WorkerStatus{
		{ID: 0, Batches: 4, Packets: 10, Forwarded: 7, Local: 1, Wakeups: 3, AvgBatch: 2.5},
		{ID: -1, Batches: 1, Packets: 1},
	}
}

func (fakeMetrics) Sizes() dataplane.TableSizes {
	return dataplane.TableSizes{
		Routes:           map[string]int{"main": 3, "local": 2},
		Neighbors:        map[string]int{"REACHABLE": 2, "STALE": 1},
		ConntrackEntries: 5, ConntrackCapacity: 262144, NATMappings: 1,
		RulesetLoaded: true, FilterRules: 12,
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMetricsCollector(t *testing.T) {
	out := scrape(t, metricsHandler(fakeMetrics{}))
	for _, want := range []string{
		"# TYPE ferry_port_rx_packets_total counter",
		`ferry_port_up{port="r0"} 1`,
		`ferry_port_up{port="r1"} 0`,
		`ferry_port_rx_packets_total{port="r0"} 10`,
		`ferry_port_rx_bytes_total{port="r0"} 980`,
		`ferry_port_tx_packets_total{port="r0"} 7`,
		`ferry_port_tx_bytes_total{port="r0"} 686`,
		`ferry_port_rx_packets_total{port="r1"} 0`,
		`ferry_port_drops_total{port="r0",reason="no_route"} 2`,
		`ferry_port_drops_total{port="r0",reason="ttl_exceeded"} 1`,
		`ferry_worker_batches_total{worker="0"} 4`,
		`ferry_worker_batches_total{worker="control"} 1`,
		`ferry_worker_packets_total{worker="0"} 10`,
		`ferry_worker_forwarded_packets_total{worker="0"} 7`,
		`ferry_worker_local_packets_total{worker="0"} 1`,
		`ferry_worker_wakeups_total{worker="0"} 3`,
		`ferry_worker_batch_size_average{worker="0"} 2.5`,
		"# TYPE ferry_fib_prefixes gauge",
		`ferry_fib_prefixes{table="main"} 3`,
		`ferry_fib_prefixes{table="local"} 2`,
		`ferry_neighbors{state="REACHABLE"} 2`,
		`ferry_neighbors{state="STALE"} 1`,
		"ferry_conntrack_entries 5",
		"ferry_conntrack_capacity 262144",
		"ferry_nat_mappings 1",
		"ferry_ruleset_loaded 1",
		"ferry_filter_rules 12",
		"go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, `port="r1",reason=`) {
		t.Errorf("zero drop reasons exported for r1")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", out)
	}
}

func TestMetricsServer(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := startMetrics("127.0.0.1:0", fakeMetrics{}, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := m.addr
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `ferry_port_rx_packets_total{port="r0"} 10`) {
		t.Errorf("scrape:\n%s", b)
	}
	// The address is taken now: a second server must fail to start, clearly.
	if _, err := startMetrics(addr, fakeMetrics{}, log); err == nil || !strings.Contains(err.Error(), "metrics listen "+addr) {
		t.Errorf("second listen on %s: %v", addr, err)
	}
	m.Close()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Errorf("still serving after Close")
	}
}
