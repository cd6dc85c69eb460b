// Package fib is ferry's forwarding information base: the routes the control
// plane installs and the longest-prefix-match lookup the dataplane workers
// run for every packet. It is pure logic and does no I/O.
//
// # Design
//
// The FIB keeps two views of the same routes. The RIB (a map from prefix to
// the routes for it, sorted by metric) is the writers' source of truth; it is
// guarded by a mutex and only the control plane touches it. The forwarding
// view is what readers use and is built from the best route of each prefix.
//
// IPv4 uses DIR-24-8, as DPDK's rte_lpm does: tbl24 has one 32-bit entry per
// /24 (2^24 entries), and a /24 that holds longer prefixes points instead at
// a tbl8 group of 256 entries, one per address. A lookup is therefore one
// load from tbl24 and, only for destinations under a longer-than-/24 prefix,
// one more from tbl8. Each entry packs an "extended" flag, the matching
// prefix length plus one (0 = no route) and a 25-bit index, either a tbl8
// group or a next-hop slot. The prefix length lets an update touch only the
// entries a prefix owns, without consulting the RIB for every address.
//
// Next hops are deduplicated by forwarding action (type, device, gateway):
// a full table from two upstreams uses two NextHop values, so the next-hop
// array stays in L1 and the only cache miss per lookup is the tbl24 entry.
// The cost of this is that NextHop.Route names one route using the next hop,
// not necessarily the one that matched; [FIB.Get] returns the exact route.
//
// IPv6 uses a multibit trie written for ferry (v6.go). The first 16 bits
// of the address index a direct root array of 65,536 node pointers; below
// it every node covers one more byte (256 slots). Routes are pushed down to
// the slots they cover (controlled prefix expansion), so a lookup walks one
// node per byte and stops at the first slot that is not a child, never
// backtracking. Nodes are compressed as in poptrie: a 256-bit bitmap of
// child slots and one of the slots where a run of equal next hops starts,
// plus the count of set bits before each 64-bit word, so one popcount
// ranks a slot into the node's dense kids and leaves arrays. Children sit
// by value in their parent's kids array, so a step is one dependent load.
// A child whose whole range resolves to one next hop (a more specific with
// its cover's next hop) is folded into its parent's leaves. The full table
// (160,147 prefixes, four next hops) makes 29,225 nodes, and most lookups
// end in the node for bits 24-31, 32-39 or 40-47. Lookup6Batch walks eight
// addresses in lockstep so that their cache misses overlap.
//
// Measured on the full table with random destinations inside its prefixes
// (BenchmarkLookup6 and friends, -cpu 1, count 3, on a shared two-core
// EPYC whose other tenant moves absolute figures by 2x between runs):
// Lookup6 81-89 ns against 210-265 ns for bart.Table and 169-179 ns for
// bart.Fast in the same run (about 0.4x), Lookup6Batch 55-65 ns. A test
// that alternates the two over the same destinations, so that both see the
// same neighbour, measured 60-77 ns against 88-127 ns (0.6-0.68x), and
// 38-49 ns batched. bart.Fast, the engine this replaces, measured the same
// as bart.Table.
//
// IPv6 updates keep a shadow trie on the writers' side: the same node
// geometry but each prefix held once, unexpanded, with per-subtree prefix
// counts. A change rebuilds only the reader nodes it can affect: the path
// from the root slot down to the node holding the prefix (copying
// siblings by value, which shares their children) and, below a changed
// prefix, the children that inherit its next hop. One atomic store then
// publishes it: of the root slot for a prefix longer than /16, or of a
// copy of the root (512 KiB of pointers) for /16 or shorter, which spans
// several root slots. Published nodes are never written again, and the
// garbage collector frees replaced ones once no reader holds them.
// IPv6 next hops are deduplicated the same way but are separate
// allocations, so they need no slot bookkeeping.
//
// ECMP routes carry a Group of weighted next hops; their NextHop has a
// Multipath, and Lookup4Flow/Lookup6Flow (or NextHop.Pick) choose a member
// by flow hash with resilient, weighted rendezvous buckets (see ecmp.go).
// Lookup4 on an ECMP route returns the group's NextHop, which describes its
// first member, so callers that ignore ECMP still forward.
//
// Policy (policy.go) adds numbered tables, each a FIB, and ip-rule-style
// rules with priority, from, to, iif, fwmark and an action, walked in
// priority order with fall-through as in Linux.
//
// # Concurrency
//
// Readers take no lock and never block. They load one published generation
// (an atomic pointer) and read its table entries with atomic 32-bit loads;
// writers serialise on a mutex and change entries in place with atomic
// 32-bit stores, so each reader sees every entry either before or after a
// change. The ordering rules that keep this safe:
//
//   - A tbl8 group is filled completely before tbl24 is pointed at it.
//   - A next-hop slot is written, and the slice holding it published, before
//     any entry refers to it; published NextHop values are never modified.
//   - Freed tbl8 groups and next-hop slots are never reused within a
//     generation, so a reader that loaded an entry just before a change
//     still finds the old, valid contents behind it. Waste is bounded by
//     rebuilding the whole generation aside (from the RIB) and swapping it
//     in when dead groups or slots outnumber live ones, or tbl8 is full;
//     the garbage collector frees the old generation once no reader holds
//     it. [FIB.Replace] uses the same build-aside-and-swap path.
//
// IPv6 readers load the trie's root (an atomic pointer), then one root slot
// (an atomic pointer), and below that read only immutable nodes, so each
// lookup sees one root slot's subtree either wholly before or wholly after
// a change.
//
// # Cost
//
// Memory: tbl24 is 64 MiB (2^24 × 4 bytes). It is allocated on the first
// IPv4 route only, and since the Go runtime gets it as fresh zeroed pages
// from the OS, untouched regions cost address space rather than RSS. Each
// tbl8 group costs 1 KiB; the shared full table (901,899 IPv4 prefixes, 961
// longer than /24) needs under a thousand, and a generation reserves twice
// that. With the full IPv4 table the whole FIB measured about 330 heap
// bytes per prefix: 74 for tbl24, the rest the RIB (map, entry and Route
// per prefix), which could be slimmed. bart alone measured 27 bytes per
// prefix but keeps no RIB.
//
// With the full IPv6 table the reader trie (nodes, leaves and root)
// measured 35.5 bytes per prefix, 3.3 of them the 512 KiB root, and
// the shadow trie 53.5; bart's Table alone takes 46.8. The whole FIB,
// RIB included, measured 352 bytes per prefix, as it did with bart.Fast.
//
// Update: adding or deleting a prefix of length L ≤ 24 rewrites 2^(24-L)
// tbl24 entries (plus the tbl8 groups under them), so a /8 touches 65,536
// entries and a /24 one; a longer prefix touches at most 256 tbl8 entries.
// Finding the covering route on delete costs at most 32 map probes. A
// rebuild costs about as much as loading every route afresh, but fills
// tbl24 with bulk copies, so for a /4 or shorter in a table of under 16k
// prefixes a rebuild is used instead of millions of atomic stores.
//
// IPv6 update: a change costs a few node rebuilds (each paints the node's
// 256 slots) plus copying the kids arrays on its path, the widest being
// the nodes under a /16 with a hundred or more children. Adding the full
// table one route at a time (BenchmarkLoad6Add) measured 14-17 µs a route,
// where bart.Fast's persistent insert took 11-14 µs; Replace builds the
// table in 0.25-0.35 s. A /16 or shorter also copies the root, and every
// node that inherits it is rebuilt: adding or deleting ::/0 on the full
// table took about 30 ms, a /32 44 µs, a /48 9 µs.
package fib

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// RouteType is what a route does with matching packets.
type RouteType uint8

// Route types, as in Linux.
const (
	Unicast     RouteType = iota // forward via a gateway or on-link
	Local                        // deliver to ferry itself
	Blackhole                    // drop silently
	Unreachable                  // drop, ICMP net/host unreachable
	Prohibit                     // drop, ICMP administratively prohibited
)

var typeNames = [...]string{"unicast", "local", "blackhole", "unreachable", "prohibit"}

func (t RouteType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("RouteType(%d)", uint8(t))
}

// Route is one route as the control plane sees it.
type Route struct {
	Prefix netip.Prefix // masked IPv4 or IPv6
	Type   RouteType
	Via    netip.Addr // gateway; zero = on-link (connected)
	Dev    int        // ferry port index; -1 = none
	Metric uint32
	Proto  string // "connected", "static", "local", "ctl"... free text for display
	// Group, if set, makes a unicast route ECMP over its members; Via
	// must then be zero and Dev -1.
	Group *Group
}

func (r Route) String() string {
	s := r.Prefix.String()
	if r.Type != Unicast {
		s = r.Type.String() + " " + s
	}
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev >= 0 {
		s += fmt.Sprintf(" dev %d", r.Dev)
	}
	if r.Group != nil {
		s += " " + r.Group.String()
	}
	if r.Proto != "" {
		s += " proto " + r.Proto
	}
	return s + fmt.Sprintf(" metric %d", r.Metric)
}

// NextHop is what the dataplane needs to forward a packet. Values returned
// by lookups are immutable and stay valid after the route is removed.
type NextHop struct {
	Type    RouteType
	Dev     int
	Gateway uint32 // IPv4 gateway in host byte order; 0 = deliver to the destination itself (on-link)
	// Gateway6 is the IPv6 gateway; the zero Addr means on-link.
	Gateway6 netip.Addr
	// Multi is set for an ECMP route: Type, Dev and gateway then describe
	// its first member, and Pick chooses the member for a flow.
	Multi *Multipath
	// Route is a route that uses this next hop. Routes with the same
	// type, device and gateway share one NextHop, so this need not be the
	// route that matched: use FIB.Get for that.
	Route *Route
}

// Errors returned by FIB methods; wrapped with details.
var (
	ErrExists   = errors.New("route exists")
	ErrNotFound = errors.New("no such route")
	ErrInvalid  = errors.New("invalid route")
)

// FIB is a forwarding table. Lookups may run concurrently with each other
// and with Add, Delete and Replace.
type FIB struct {
	gen atomic.Pointer[gen] // what readers use

	v6 atomic.Pointer[trie6] // nil until the first IPv6 route

	mu  sync.Mutex // serialises writers
	rib map[netip.Prefix]*ribEntry
	nh6 map[nhKey]*nhRef // shared IPv6 next hops
	w6  *writer6         // writers' side of v6; nil while v6 is
}

// ribEntry holds every route for one prefix, best (lowest metric) first.
type ribEntry struct {
	prefix netip.Prefix
	routes []*Route
	slot   uint32   // IPv4: next-hop slot of routes[0] in the current generation
	nh6    *NextHop // IPv6: next hop of routes[0]
}

// New returns an empty FIB.
func New() *FIB {
	f := &FIB{rib: make(map[netip.Prefix]*ribEntry), nh6: make(map[nhKey]*nhRef)}
	f.gen.Store(newGen(false, 0))
	return f
}

func validate(r *Route) error {
	p := r.Prefix
	if !p.IsValid() {
		return fmt.Errorf("%w: prefix %v", ErrInvalid, p)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%w: %v: IPv4-mapped IPv6 prefix", ErrInvalid, p)
	}
	if p.Masked() != p {
		// Rejected rather than normalised: 10.1.2.3/8 is more often a typo
		// for a host route than a request for 10.0.0.0/8.
		return fmt.Errorf("%w: %v has host bits set (did you mean %v?)", ErrInvalid, p, p.Masked())
	}
	if r.Type > Prohibit {
		return fmt.Errorf("%w: %v: unknown type %d", ErrInvalid, p, r.Type)
	}
	if r.Via.IsValid() {
		if r.Via.Is4() != p.Addr().Is4() || r.Via.Is4In6() {
			return fmt.Errorf("%w: %v: gateway %v is of the other address family", ErrInvalid, p, r.Via)
		}
		if r.Type != Unicast {
			return fmt.Errorf("%w: %v: a %v route takes no gateway", ErrInvalid, p, r.Type)
		}
	}
	if r.Group != nil {
		if r.Type != Unicast || r.Via.IsValid() || r.Dev != -1 {
			return fmt.Errorf("%w: %v: an ECMP route is unicast with no gateway or device of its own", ErrInvalid, p)
		}
		for _, h := range r.Group.hops {
			if h.Via.IsValid() && h.Via.Is4() != p.Addr().Is4() {
				return fmt.Errorf("%w: %v: next hop %v is of the other address family", ErrInvalid, p, h.Via)
			}
		}
		return nil
	}
	if r.Dev < -1 {
		return fmt.Errorf("%w: %v: device %d", ErrInvalid, p, r.Dev)
	}
	if (r.Type == Unicast || r.Type == Local) && r.Dev < 0 {
		return fmt.Errorf("%w: %v: a %v route needs a device", ErrInvalid, p, r.Type)
	}
	return nil
}

// Add installs r. It fails if r is invalid or a route for the same prefix
// and metric exists. Among a prefix's routes the lowest metric is used.
func (f *FIB) Add(r Route) error {
	if err := validate(&r); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.rib[r.Prefix]
	if e != nil {
		for _, o := range e.routes {
			if o.Metric == r.Metric {
				return fmt.Errorf("%w: %v metric %d", ErrExists, r.Prefix, r.Metric)
			}
		}
	}
	rp := &r
	if e == nil {
		e = &ribEntry{prefix: r.Prefix, routes: []*Route{rp}}
		f.rib[r.Prefix] = e
		if r.Prefix.Addr().Is6() {
			f.set6(e)
			return nil
		}
		g := f.gen.Load()
		if g.tbl24 == nil || f.rebuildCheaper(r.Prefix) {
			f.rebuild(0) // allocates tbl24 if need be and installs e
			return nil
		}
		e.slot = g.acquire(rp)
		if !g.install(r.Prefix, e.slot) {
			f.rebuild(0)
		}
		return nil
	}
	i, _ := slices.BinarySearchFunc(e.routes, r.Metric, func(o *Route, m uint32) int { return cmp.Compare(o.Metric, m) })
	e.routes = slices.Insert(e.routes, i, rp)
	if i == 0 {
		f.changeBest(r.Prefix, e)
	}
	return nil
}

// Delete removes the route with r's prefix and metric, and also r's gateway
// and device when those are set (Via valid, Dev >= 0).
func (f *FIB) Delete(r Route) error {
	if !r.Prefix.IsValid() {
		return fmt.Errorf("%w: prefix %v", ErrInvalid, r.Prefix)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.rib[r.Prefix]
	i := -1
	if e != nil {
		i = slices.IndexFunc(e.routes, func(o *Route) bool {
			return o.Metric == r.Metric && (!r.Via.IsValid() || o.Via == r.Via) && (r.Dev < 0 || o.Dev == r.Dev)
		})
	}
	if i < 0 {
		return fmt.Errorf("%w: %v", ErrNotFound, r)
	}
	e.routes = slices.Delete(e.routes, i, i+1)
	g := f.gen.Load()
	switch {
	case len(e.routes) == 0 && r.Prefix.Addr().Is6():
		delete(f.rib, r.Prefix)
		f.delete6(e)
	case len(e.routes) == 0:
		delete(f.rib, r.Prefix)
		if f.rebuildCheaper(r.Prefix) {
			f.rebuild(0)
			return nil
		}
		cover := f.cover(r.Prefix)
		g.uninstall(r.Prefix, cover)
		g.release(e.slot)
		f.maybeCompact(g)
	case i == 0:
		f.changeBest(r.Prefix, e)
	}
	return nil
}

// changeBest repoints a prefix's entries at the next hop of its (new) best
// route.
func (f *FIB) changeBest(p netip.Prefix, e *ribEntry) {
	if p.Addr().Is6() {
		f.set6(e)
		return
	}
	if f.rebuildCheaper(p) {
		f.rebuild(0)
		return
	}
	g := f.gen.Load()
	old := e.slot
	e.slot = g.acquire(e.routes[0])
	if e.slot == old {
		g.release(old)
		return
	}
	g.repoint(p, e.slot)
	g.release(old)
	f.maybeCompact(g)
}

// cover returns the entry value of the longest prefix in the RIB strictly
// shorter than p that contains it, or 0 if there is none.
func (f *FIB) cover(p netip.Prefix) uint32 {
	for b := p.Bits() - 1; b >= 0; b-- {
		q, _ := p.Addr().Prefix(b)
		if e := f.rib[q]; e != nil {
			return mkEntry(e.slot, b)
		}
	}
	return 0
}

// rebuildCheaper reports whether rebuilding a small table aside beats
// changing p's entries in place: a /0 means 2^24 atomic stores (about
// 0.15 s), while a rebuild of a few thousand routes is mostly bulk copies.
func (f *FIB) rebuildCheaper(p netip.Prefix) bool {
	return p.Bits() <= 4 && len(f.rib) < 1<<14
}

func (f *FIB) maybeCompact(g *gen) {
	if g.wasteful() {
		f.rebuild(0)
	}
}

// rebuild builds a fresh generation from the RIB and publishes it. Caller
// holds f.mu.
func (f *FIB) rebuild(minGroups int) {
	f.gen.Store(build(f.rib, minGroups))
}

// build makes a generation holding the best route of every RIB entry and
// sets each entry's slot to match.
func build(rib map[netip.Prefix]*ribEntry, minGroups int) *gen {
	// Shorter prefixes first, so every install overwrites what it covers
	// and tbl8 groups are created only once the /24s below them are final.
	var byLen [33][]*ribEntry
	long := make(map[uint32]struct{})
	n := 0
	for _, e := range rib {
		if !e.prefix.Addr().Is4() {
			continue
		}
		n++
		b := e.prefix.Bits()
		byLen[b] = append(byLen[b], e)
		if b > 24 {
			long[addr4(e.prefix.Addr())>>8] = struct{}{}
		}
	}
	g := newGen(n > 0, max(2*len(long)+64, minGroups))
	for _, es := range byLen {
		for _, e := range es {
			e.slot = g.acquire(e.routes[0])
			if e.prefix.Bits() <= 24 {
				g.fill(e.prefix, e.slot)
			} else if !g.install(e.prefix, e.slot) {
				panic("fib: tbl8 sized too small in build")
			}
		}
	}
	return g
}

// Replace swaps the whole table for routes at once: it validates and builds
// the new table aside, and on any error leaves the FIB unchanged. Readers
// see either the old table or the new one.
func (f *FIB) Replace(routes []Route) error {
	// One allocation each for the routes, the entries and their route
	// lists keeps a million-route load cheap for the allocator and GC.
	rs := slices.Clone(routes)
	ptrs := make([]*Route, len(rs))
	ents := make([]ribEntry, 0, len(rs))
	rib := make(map[netip.Prefix]*ribEntry, len(rs))
	for i := range rs {
		r := &rs[i]
		if err := validate(r); err != nil {
			return err
		}
		ptrs[i] = r
		if e := rib[r.Prefix]; e != nil {
			e.routes = append(e.routes, r)
			continue
		}
		ents = append(ents, ribEntry{prefix: r.Prefix, routes: ptrs[i : i+1 : i+1]})
		rib[r.Prefix] = &ents[len(ents)-1]
	}
	for _, e := range rib {
		if len(e.routes) == 1 {
			continue
		}
		slices.SortFunc(e.routes, func(a, b *Route) int { return cmp.Compare(a.Metric, b.Metric) })
		for i := 1; i < len(e.routes); i++ {
			if e.routes[i].Metric == e.routes[i-1].Metric {
				return fmt.Errorf("%w: %v metric %d", ErrExists, e.prefix, e.routes[i].Metric)
			}
		}
	}
	g := build(rib, 0)
	t6, w6, nh6 := build6(rib)
	f.mu.Lock()
	f.rib = rib
	f.gen.Store(g)
	f.v6.Store(t6)
	f.w6 = w6
	f.nh6 = nh6
	f.mu.Unlock()
	return nil
}

// Routes returns every route, sorted by prefix then metric.
func (f *FIB) Routes() []Route {
	f.mu.Lock()
	out := make([]Route, 0, len(f.rib))
	for _, e := range f.rib {
		for _, r := range e.routes {
			out = append(out, *r)
		}
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	})
	return out
}

// Len returns the number of prefixes with at least one route.
func (f *FIB) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rib)
}

// Get returns the route a lookup of a would use, for display ("route
// get"). It takes the writers' lock and is not for the packet path.
func (f *FIB) Get(a netip.Addr) (Route, bool) {
	a = a.Unmap()
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.Is6() {
		return f.get6(a)
	}
	// The entry's depth names the matching prefix, so one RIB probe does.
	g := f.gen.Load()
	if g.tbl24 == nil {
		return Route{}, false
	}
	dst := addr4(a)
	e := g.tbl24[dst>>8]
	if e&extBit != 0 {
		e = g.tbl8[uint(e&idxMask)<<8|uint(dst&0xff)]
	}
	if e == 0 {
		return Route{}, false
	}
	p, _ := a.Prefix(int(depth(e)) - 1)
	return *f.rib[p].routes[0], true
}

// Lookup4 returns the next hop for dst (IPv4, host byte order), or nil if
// no route matches. It never blocks and does not allocate.
func (f *FIB) Lookup4(dst uint32) *NextHop {
	g := f.gen.Load()
	t := g.tbl24
	if t == nil {
		return nil
	}
	e := atomic.LoadUint32(&t[dst>>8])
	if e&extBit != 0 {
		e = atomic.LoadUint32(&g.tbl8[uint(e&idxMask)<<8|uint(dst&0xff)])
	}
	if e == 0 {
		return nil
	}
	nh := *g.nh.Load()
	return &nh[e&idxMask]
}

// Lookup4Batch looks up every dst (host byte order) and stores the next
// hops, or nil for no route, in out, which must be at least as long.
func (f *FIB) Lookup4Batch(dst []uint32, out []*NextHop) {
	out = out[:len(dst)]
	g := f.gen.Load()
	t := g.tbl24
	if t == nil {
		clear(out)
		return
	}
	// Loading the next-hop slice before the entries is safe: a slot an
	// entry refers to was published before the entry, so if it is past the
	// end of this copy a fresh load will have it.
	nh := *g.nh.Load()
	tbl8 := g.tbl8
	for i, d := range dst {
		e := atomic.LoadUint32(&t[d>>8])
		if e&extBit != 0 {
			e = atomic.LoadUint32(&tbl8[uint(e&idxMask)<<8|uint(d&0xff)])
		}
		if e == 0 {
			out[i] = nil
			continue
		}
		k := e & idxMask
		if int(k) >= len(nh) {
			nh = *g.nh.Load()
		}
		out[i] = &nh[k]
	}
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
