package dataplane

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
//	prerouting   hook: filter, DNAT                                   hooks.go
//	route        FIB lookup for the whole batch                        route.go
//	             rp_filter, directed broadcasts, source routes         rpfilter.go broadcast.go options.go
//	local        ferry's own addresses: reassembly, echo reply,       local.go reassemble.go
//	             port unreachable, TCP reset                           tcpreset.go
//	forward      TTL and MTU checks, redirects, options, hook: filter forward.go redirect.go options.go
//	postrouting  hook: SNAT, masquerade                               hooks.go
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
	stagePrerouting
	stageRoute
	stageLocal
	stageForward
	stagePostrouting
	stageFragment
	stageNeighbour
	stageRewrite
	stageTransmit
	stageDone // dropped, queued or sent
)

var stageNames = [...]string{
	"input", "arp", "nd", "prerouting", "route", "local", "forward",
	"postrouting", "fragment", "neighbour", "rewrite", "transmit", "done",
}

func (s stage) String() string { return stageNames[s] }

// process runs one batch through every stage.
func (w *worker) process() {
	w.input()
	w.arp()
	w.nd()
	w.hook(stagePrerouting, w.r.hooks.Prerouting)
	w.route()
	w.local()
	w.forward()
	w.hook(stagePostrouting, w.r.hooks.Postrouting)
	w.fragment()
	w.neighbour()
	w.rewrite()
	w.transmit()
	w.finish()
}
