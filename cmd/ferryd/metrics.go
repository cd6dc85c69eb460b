package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-router/ferry/dataplane"
)

// metricsSource is what the collector reads on each scrape: the router's
// status views. Nothing is counted on the packet path for metrics; every
// value is one the workers already keep for ferryctl.
type metricsSource interface {
	Interfaces() []dataplane.InterfaceStatus
	Workers() []dataplane.WorkerStatus
	Sizes() dataplane.TableSizes
}

var _ metricsSource = (*dataplane.Router)(nil)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("ferry_"+name, help, labels, nil)
}

var (
	descPortUp        = desc("port_up", "Whether the port is up (1) or down (0).", "port")
	descPortRxPackets = desc("port_rx_packets_total", "Frames received on the port.", "port")
	descPortRxBytes   = desc("port_rx_bytes_total", "Bytes received on the port.", "port")
	descPortTxPackets = desc("port_tx_packets_total", "Frames transmitted on the port.", "port")
	descPortTxBytes   = desc("port_tx_bytes_total", "Bytes transmitted on the port.", "port")
	descPortDrops     = desc("port_drops_total", "Frames dropped, by the port they arrived on and the drop reason (reasons that never occurred are absent).", "port", "reason")

	descWorkerBatches   = desc("worker_batches_total", "Non-empty batches the worker processed (worker \"control\" is the control goroutine's pipeline).", "worker")
	descWorkerPackets   = desc("worker_packets_total", "Frames the worker received.", "worker")
	descWorkerForwarded = desc("worker_forwarded_packets_total", "Frames the worker transmitted.", "worker")
	descWorkerLocal     = desc("worker_local_packets_total", "Frames the worker delivered to ferry itself.", "worker")
	descWorkerWakeups   = desc("worker_wakeups_total", "Returns from poll(2).", "worker")
	descWorkerAvgBatch  = desc("worker_batch_size_average", "Mean frames per non-empty batch since start (packets / batches).", "worker")

	descFIBPrefixes   = desc("fib_prefixes", "Prefixes with at least one route, by routing table.", "table")
	descNeighbors     = desc("neighbors", "Neighbour (ARP and ND) entries by state.", "state")
	descCTEntries     = desc("conntrack_entries", "Entries in the connection table.")
	descCTCapacity    = desc("conntrack_capacity", "The connection table's bound on entries ([conntrack] max).")
	descNATMappings   = desc("nat_mappings", "Live NAT source mappings.")
	descRulesetLoaded = desc("ruleset_loaded", "Whether a filter ruleset is loaded.")
	descFilterRules   = desc("filter_rules", "Rules in the running ruleset, all chains.")
)

// collector is a prometheus.Collector over a metricsSource, read fresh on
// every scrape.
type collector struct{ src metricsSource }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descPortUp, descPortRxPackets, descPortRxBytes, descPortTxPackets, descPortTxBytes, descPortDrops,
		descWorkerBatches, descWorkerPackets, descWorkerForwarded, descWorkerLocal, descWorkerWakeups, descWorkerAvgBatch,
		descFIBPrefixes, descNeighbors, descCTEntries, descCTCapacity, descNATMappings, descRulesetLoaded, descFilterRules,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, p := range c.src.Interfaces() {
		gauge(descPortUp, b2f(p.Up), p.Name)
		counter(descPortRxPackets, p.RxPackets, p.Name)
		counter(descPortRxBytes, p.RxBytes, p.Name)
		counter(descPortTxPackets, p.TxPackets, p.Name)
		counter(descPortTxBytes, p.TxBytes, p.Name)
		for _, reason := range sortedKeys(p.Drops) {
			counter(descPortDrops, p.Drops[reason], p.Name, reason)
		}
	}
	for _, w := range c.src.Workers() {
		id := strconv.Itoa(w.ID)
		if w.ID < 0 {
			id = "control"
		}
		counter(descWorkerBatches, w.Batches, id)
		counter(descWorkerPackets, w.Packets, id)
		counter(descWorkerForwarded, w.Forwarded, id)
		counter(descWorkerLocal, w.Local, id)
		counter(descWorkerWakeups, w.Wakeups, id)
		gauge(descWorkerAvgBatch, w.AvgBatch, id)
	}
	s := c.src.Sizes()
	for _, t := range sortedKeys(s.Routes) {
		gauge(descFIBPrefixes, float64(s.Routes[t]), t)
	}
	for _, st := range sortedKeys(s.Neighbors) {
		gauge(descNeighbors, float64(s.Neighbors[st]), st)
	}
	gauge(descCTEntries, float64(s.ConntrackEntries))
	gauge(descCTCapacity, float64(s.ConntrackCapacity))
	gauge(descNATMappings, float64(s.NATMappings))
	gauge(descRulesetLoaded, b2f(s.RulesetLoaded))
	gauge(descFilterRules, float64(s.FilterRules))
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// metricsHandler serves src (and the Go runtime's and process's own
// metrics) in the Prometheus text format.
func metricsHandler(src metricsSource) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A scrape storm is served a few at a time; the rest wait or give up
	// with 503 rather than pile up walks of the tables.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

type metricsServer struct {
	addr string // as bound
	srv  *http.Server
	done chan struct{}
}

// startMetrics listens on addr (in ferryd's network namespace) and serves
// /metrics; it fails at once if the address cannot be bound.
func startMetrics(addr string, src metricsSource, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(src))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ferryd: metrics at /metrics")
	})
	m := &metricsServer{
		addr: ln.Addr().String(),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return m, nil
}

// Close stops the server, giving scrapes in progress a moment to finish.
func (m *metricsServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m.srv.Shutdown(ctx) != nil {
		m.srv.Close()
	}
	<-m.done
}
