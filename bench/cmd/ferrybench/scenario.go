package main

import "time"

// A scenario is one row group of the benchmark, described once: the
// runner, the Markdown table, the CSV and the charts all read this value,
// so adding a row is adding one entry to the list of its kind:
//
//	rate.go     packet rate (64B ... IMIX, filter, NAT, IPv6)  rateScenarios
//	latency.go  round trips through the router                latencyScenarios
//	tcp.go      iperf3 between real hosts                      tcpScenarios
//	tables.go   full routing table, ferryd's memory            tableScenarios
//
// A row for a feature ferryd lacks still gets its entry: notBuilt says
// why, and the kernel's figure is measured meanwhile. The day the feature
// lands, its entry gains a ferryd config (ferry, or ferryNft for a
// ruleset) and loses notBuilt. A new
// kind (TUN, AF_XDP) is a new file with its list and a runner, plus its
// entry in kinds (main.go).
type scenario struct {
	name     string
	measures kind
	// entrants are the contenders and the placements each runs in.
	// Trials alternate between them, so drift in the machine's speed
	// shifts all alike.
	entrants []entrant
	gen      genSpec // the generator's frames and rate (throughput and loaded latency)

	// kernelNft is an nftables ruleset the kernel router holds for this
	// row only (filter rules, masquerade); ferry is the ferryd config
	// appended to every ferryd contender's for this row; ferryNft is a
	// ruleset (filter or nat chains) ferryd loads for
	// this row only: written to the run's folder and named by a [ruleset]
	// table appended to ferry. A ferryd whose appended config differs
	// from the row's is restarted with the row's (runner.ensure).
	kernelNft string
	ferry     string
	ferryNft  string
	// setup runs once before the row's first trial (a full table load);
	// what it changes stays for the rest of the run.
	setup func(*runner) error
	// needsTable: the row needs the full routing table (-table).
	needsTable bool
	// notBuilt: ferryd lacks the feature; its row says so, with this
	// reason, and only the kernel runs.
	notBuilt string

	// target judges ferryd's row against the kernel's best placement,
	// or against the sameTrials contender's row when there is one, or
	// against ferryd's own ownBaseline row when the target says so.
	target *target
	// ownBaseline: each contender's row is also compared with its own
	// row of this earlier scenario (the kernel's full table against its
	// 65,536 flows, ferryd's 10,000 filter rules against its 10, both
	// routers' masquerade against their 65,536 flows without NAT; not
	// ferryd's when sameTrials names its baseline). sameTrials names a contender run in the same trials whose
	// row is ferryd's baseline instead, with no ratio of its own.
	ownBaseline, sameTrials string
	// note is shown beside the scenario's name in the table.
	note string
}

// kind is what a scenario measures, and so which runner takes it and
// which columns its rows fill.
type kind int

const (
	kindPPS  kind = iota // offered/delivered packets/s, CPU per packet
	kindRTT              // ping p50/p99
	kindGbps             // iperf3 TCP
	kindRSS              // ferryd's resident memory
)

// genSpec is what `ferrybench gen` offers.
type genSpec struct {
	size  int // frame size with FCS
	flows int
	imix  bool
	ipv6  bool // IPv6 frames to bench.SinkAddr6, counted in the sink's /proc/net/snmp6
	// rateOf and rateShare pace the generator at a share of the kernel's
	// best delivered rate in an earlier scenario (0: flat out, or idle
	// for latency rows).
	rateOf    string
	rateShare float64
}

// entrant is one contender in one placement.
type entrant struct {
	contender string
	place     placement
}

// placement is where the router's work runs. Which placement wins
// differs between machines (RPS on veth collapses on some, helps on
// others), so the kernel runs in each that can win and is judged by the
// better; ferryd's placements are shown each in its own row.
type placement struct {
	name string
	rps  string // R's rps_cpus mask on r0 and r1 ("0": off)
	cpus string // ferryd's CPUs (taskset -c); "" for the kernel
}

var (
	// The kernel forwards in R's receive softirq. With RPS off that is
	// the generator's softirq on CPU 0 (veth delivers in the sender's
	// context); with RPS to CPU 1 it is CPU 1, away from the generator.
	rpsOff  = placement{name: "RPS off", rps: "0"}
	rpsCPU1 = placement{name: "RPS to CPU 1", rps: "2"}
	// ferryd's threads pinned; the kernel's delivery into its RX ring
	// stays in the generator's softirq (no RPS), as a NIC's DMA would take
	// that work off the router's core.
	onCPU1    = placement{name: "on CPU 1", rps: "0", cpus: "1"}
	onCPUBoth = placement{name: "on CPU 0,1", rps: "0", cpus: "0,1"}
)

// Contender names, as rows show them.
const (
	kernel = "kernel"
	ferryd = "ferryd"
	ioOnly = "ferryd io-only floor"
	// ferrySingle is ferryd with connected routes only, run beside the
	// full-table contenders so the 5% criterion compares trials taken
	// minutes, not quarter-hours, apart.
	ferrySingle = "ferryd, connected routes only"
	ferryPoll   = "ferryd poll mode (busy_poll_us=10000)"
)

// kernelAtBest is the kernel in every placement that can win.
var kernelAtBest = []entrant{{kernel, rpsOff}, {kernel, rpsCPU1}}

func entrants(lists ...[]entrant) []entrant {
	var out []entrant
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// target is what ferryd's row must show. ratio compares delivered
// packets/s or Gbit/s with the kernel's best placement (with ferryd's own
// row in the scenario's ownBaseline if vsOwnBaseline); ownRatio, when
// set, is a second bound against that own row, both to be met (the
// masquerade row: against the kernel with masquerade, and against
// ferryd without NAT); p50Within the median round trip; noLoss asks for
// every probe answered and no frame lost to a full RX ring.
type target struct {
	ratio         float64
	vsOwnBaseline bool
	ownRatio      float64
	p50Within     time.Duration
	noLoss        bool
}
