package dataplane

// Hook is where the filter and NAT attach: prerouting (before the route
// lookup: DNAT), forward (forwarded packets only: filtering) and
// postrouting (after routing, every packet that leaves: SNAT, masquerade).
// A hook sees the whole batch, as every stage does, and may rewrite
// packets in place or drop them with Packet.Drop. It must not keep
// references to packets after Process returns: the buffers are reused.
// IPv6 packets pass the same hooks; Packet.IsIPv6 tells them apart.
type Hook interface {
	Name() string
	Process(pkts []*Packet)
}

// Hooks are the hook chains, run in order at each point. They are fixed
// before the workers start.
type Hooks struct {
	Prerouting  []Hook
	Forward     []Hook
	Postrouting []Hook
}

// hook runs a chain over the packets waiting at stage s, gathered into a
// scratch vector only when a chain is installed, so an empty chain costs
// one pass over the batch. A hook must skip packets an earlier hook in the
// chain dropped (!Alive).
func (w *worker) hook(s stage, chain []Hook) {
	if len(chain) == 0 {
		for _, p := range w.vec {
			if p.next == s {
				p.next = s + 1
			}
		}
		return
	}
	at := w.hookVec[:0]
	for _, p := range w.vec {
		if p.next == s {
			at = append(at, p)
		}
	}
	for _, h := range chain {
		h.Process(at)
	}
	for _, p := range at {
		if p.next == s {
			p.next = s + 1
		}
	}
	w.hookVec = at
}
