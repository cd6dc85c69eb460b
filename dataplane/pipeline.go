package dataplane

import "github.com/ferry-router/ferry/filter"

// The packet path. Every batch a worker reads goes through these stages in
// this order; each stage is one file named after it. A packet's `next`
// names the next stage that must see it, and only ever moves forward, so a
// stage can send a packet straight to a later one (an echo reply skips the
// forward hook; an ARP reply goes straight to transmit) and one pass over
// the list handles the whole batch.
//
//	input        Ethernet, ARP/IPv4/IPv6 demux, header validation     input.go input6.go
//	             (and IPv4 options, when the header has any)          options.go
//	arp          answer requests for ferry's addresses, learn replies arp.go
//	nd           IPv6 Neighbor Discovery: NS, NA, RS                  nd.go
//	conntrack    find or start each packet's connection (ruleset only) conntrack.go
//	prerouting   hook: filter, then DNAT and de-SNAT                  filter.go nat.go hooks.go
//	route        FIB lookup for the whole batch                        route.go
//	             rp_filter, directed broadcasts, source routes         rpfilter.go broadcast.go options.go
//	localin      hook input: filter packets to ferry                  filter.go
//	local        ferry's own addresses: reassembly, echo reply,       local.go reassemble.go
//	             port unreachable, TCP reset                           tcpreset.go
//	forward      TTL and MTU checks, redirects, options, hook: filter forward.go redirect.go options.go
//	output       hook output: filter ferry's own packets              filter.go
//	postrouting  hook: filter, SNAT, masquerade; confirm new flows   filter.go nat.go hooks.go
//	fragment     split packets larger than the egress MTU (DF clear)  fragment.go
//	neighbour    next hop's MAC, or queue and ARP for it              neighbour.go
//	rewrite      MAC addresses, TTL decrement, incremental checksum   rewrite.go
//	transmit     one write per egress port for the whole batch        transmit.go
//
// Exceptions are routes, not afterthoughts: a packet that needs an ICMP
// error is turned into that error in place (icmp.go, icmp6.go) and
// continues at postrouting as a packet of ferry's own.
//
// IPv6 packets (flagIPv6) take the same stages; route, local, forward and
// fragment hand them to route6.go, local6.go and forward6.go.

type stage uint8

const (
	stageInput stage = iota
	stageARP
	stageND
	stageConntrack
	stagePrerouting
	stageRoute
	stageLocalIn
	stageLocal
	stageForward
	stageOutput
	stagePostrouting
	stageFragment
	stageNeighbour
	stageRewrite
	stageTransmit
	stageDone // dropped, queued or sent
)

var stageNames = [...]string{
	"input", "arp", "nd", "conntrack", "prerouting", "route", "localin", "local", "forward",
	"output", "postrouting", "fragment", "neighbour", "rewrite", "transmit", "done",
}

func (s stage) String() string { return stageNames[s] }

// process runs one batch through every stage.
func (w *worker) process() {
	w.nowNS = int64(w.now.Sub(w.r.epoch))
	w.input()
	w.arp()
	w.nd()
	w.conntrack()
	w.filterHook(stagePrerouting, filter.HookPrerouting)
	w.dnat()
	w.hook(stagePrerouting, w.r.hooks.Prerouting)
	w.route()
	w.localIn()
	w.local()
	w.forward()
	w.output()
	w.filterHook(stagePostrouting, filter.HookPostrouting)
	w.snat()
	w.hook(stagePostrouting, w.r.hooks.Postrouting)
	w.confirmAt(stagePostrouting + 1)
	w.fragment()
	w.neighbour()
	w.rewrite()
	w.transmit()
	w.finish()
}
