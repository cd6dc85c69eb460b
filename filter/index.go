package filter

import "slices"

// The per-chain index: for each L4 protocol, the rules that can match a
// packet without the L4 header, and per destination port the rules that
// can match that port. Lists hold rule numbers in chain order, so
// walking a list keeps first-match order; a rule is left out only when
// a match before its first statement cannot hold for the key, so
// skipping it changes nothing (no counter or limit it would have run).

type chainIndex struct {
	proto [256]*protoIndex
}

type protoIndex struct {
	noL4    []int32 // HasPorts false
	anyPort []int32 // HasPorts, a port no rule names
	// HasPorts, a port some rule names: slot[port] is 1 + the index of its
	// list in lists, 0 for none. A flat table (256 KiB per protocol that
	// names ports) costs one load where a map cost a hash and a probe:
	// a third of Eval's time in the pipeline benchmark.
	slot  []uint32
	lists [][]int32
}

func (x *chainIndex) lookup(p *Packet) []int32 {
	pi := x.proto[p.L4Proto]
	if !p.HasPorts {
		return pi.noL4
	}
	if pi.slot != nil {
		if k := pi.slot[p.DstPort]; k != 0 {
			return pi.lists[k-1]
		}
	}
	return pi.anyPort
}

// indexBudget bounds the entries of a protocol's port lists: past it
// (many wildcard rules times many ports) the protocol keeps one list and
// rules test their ports themselves.
const indexBudget = 1 << 20

func buildIndex(rules []crule) chainIndex {
	var x chainIndex
	applies := func(r *crule, p int) bool {
		return r.protos == nil || r.protos[p>>6]&(1<<(p&63)) != 0
	}
	// Protocols no rule names share one index built from the rules that
	// name none.
	named := [256]bool{}
	for i := range rules {
		if rules[i].protos != nil {
			for p := 0; p < 256; p++ {
				named[p] = named[p] || applies(&rules[i], p)
			}
		}
	}
	var other *protoIndex
	for p := 0; p < 256; p++ {
		if named[p] {
			x.proto[p] = buildProto(rules, func(r *crule) bool { return applies(r, p) })
			continue
		}
		if other == nil {
			other = buildProto(rules, func(r *crule) bool { return r.protos == nil })
		}
		x.proto[p] = other
	}
	return x
}

func buildProto(rules []crule, applies func(*crule) bool) *protoIndex {
	pi := &protoIndex{noL4: []int32{}, anyPort: []int32{}}
	var keys []uint16
	seen := map[uint16]bool{}
	var withPorts, wild []int32
	for i := range rules {
		r := &rules[i]
		if !applies(r) {
			continue
		}
		if !r.needL4 {
			pi.noL4 = append(pi.noL4, int32(i))
		}
		if r.dports == nil {
			wild = append(wild, int32(i))
			pi.anyPort = append(pi.anyPort, int32(i))
			continue
		}
		withPorts = append(withPorts, int32(i))
		for _, d := range r.dports {
			if !seen[d] {
				seen[d] = true
				keys = append(keys, d)
			}
		}
	}
	if len(keys) == 0 {
		return pi
	}
	if len(keys)*(len(wild)+1)+len(withPorts) > indexBudget {
		all := append(slices.Clone(withPorts), wild...)
		slices.Sort(all)
		pi.anyPort = all
		return pi
	}
	ports := make(map[uint16][]int32, len(keys))
	for _, i := range withPorts {
		for _, d := range rules[i].dports {
			ports[d] = append(ports[d], i)
		}
	}
	if len(keys) > 0 {
		pi.slot = make([]uint32, 1<<16)
	}
	for _, d := range keys {
		l := append(ports[d], wild...)
		slices.Sort(l)
		if pi.slot[d] == 0 {
			pi.lists = append(pi.lists, slices.Compact(l))
			pi.slot[d] = uint32(len(pi.lists))
		}
	}
	return pi
}
