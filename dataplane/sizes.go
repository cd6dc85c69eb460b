package dataplane

// TableSizes counts what ferry's tables hold, for the metrics endpoint. The
// FIB, connection and NAT counts are taken under the tables' own locks
// without listing entries, so a scrape costs little however large they are;
// the neighbour table is listed (as show neighbors does).
type TableSizes struct {
	// FIB: prefixes with at least one route, by table name (every table in
	// use, local included).
	Routes map[string]int
	// Neighbours (ARP and ND) by state: REACHABLE, STALE, INCOMPLETE, ...
	Neighbors map[string]int
	// Connection tracking: entries (live and reserved) and the bound.
	ConntrackEntries  int
	ConntrackCapacity int
	// NAT: live source mappings.
	NATMappings int
	// The running ruleset's rules, all chains; RulesetLoaded false: none.
	RulesetLoaded bool
	FilterRules   int
}

// Sizes reads TableSizes.
func (r *Router) Sizes() TableSizes {
	s := TableSizes{Routes: map[string]int{}, Neighbors: map[string]int{}}
	for _, id := range r.policy.Tables() {
		s.Routes[r.cfg.TableName(id)] = r.policy.Table(id).Len()
	}
	for _, n := range r.neigh.Snapshot() {
		s.Neighbors[n.State.String()]++
	}
	s.ConntrackEntries = r.ct.Count()
	s.ConntrackCapacity = r.ct.Capacity()
	s.NATMappings = r.nat.Stats().Mappings
	if rs := r.ruleset.Load(); rs != nil {
		s.RulesetLoaded = true
		s.FilterRules = rs.prog.RuleCount()
	}
	return s
}
