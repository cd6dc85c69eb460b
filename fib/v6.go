package fib

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// nhRef is a shared IPv6 next hop and the number of prefixes using it.
type nhRef struct {
	nh   *NextHop
	refs int
}

func (f *FIB) acquire6(r *Route) *NextHop {
	k := key(r)
	if x := f.nh6[k]; x != nil {
		x.refs++
		return x.nh
	}
	n := newNextHop(r)
	nh := &n
	f.nh6[k] = &nhRef{nh: nh, refs: 1}
	return nh
}

// release6 drops a reference. A NextHop is its own allocation, so readers
// holding it keep it alive and it can be forgotten at once.
func (f *FIB) release6(nh *NextHop) {
	k := key(nh.Route)
	if x := f.nh6[k]; x != nil && x.nh == nh {
		if x.refs--; x.refs == 0 {
			delete(f.nh6, k)
		}
	}
}

// set6 installs the next hop of e's best route: bart's persistent insert
// copies the path to the prefix and leaves the published table untouched,
// so readers keep a consistent table until the new one is stored.
func (f *FIB) set6(e *ribEntry) {
	old := e.nh6
	e.nh6 = f.acquire6(e.routes[0])
	t := f.v6.Load()
	if t == nil {
		t = new(bart.Fast[*NextHop])
	}
	f.v6.Store(t.InsertPersist(e.prefix, e.nh6))
	if old != nil {
		f.release6(old)
	}
}

func (f *FIB) delete6(e *ribEntry) {
	f.v6.Store(f.v6.Load().DeletePersist(e.prefix))
	f.release6(e.nh6)
	e.nh6 = nil
}

func (f *FIB) get6(a netip.Addr) (Route, bool) {
	t := f.v6.Load()
	if t == nil {
		return Route{}, false
	}
	p, _, ok := t.LookupPrefixLPM(netip.PrefixFrom(a, 128))
	if !ok {
		return Route{}, false
	}
	return *f.rib[p].routes[0], true
}

// build6 makes a fresh IPv6 table from the RIB's IPv6 entries.
func build6(rib map[netip.Prefix]*ribEntry) (*bart.Fast[*NextHop], map[nhKey]*nhRef) {
	f := &FIB{nh6: make(map[nhKey]*nhRef)}
	t := new(bart.Fast[*NextHop])
	for _, e := range rib {
		if e.prefix.Addr().Is6() {
			e.nh6 = f.acquire6(e.routes[0])
			t.Insert(e.prefix, e.nh6)
		}
	}
	return t, f.nh6
}

// Lookup6 returns the next hop for dst (IPv6), or nil if no route
// matches. It never blocks and does not allocate.
func (f *FIB) Lookup6(dst netip.Addr) *NextHop {
	t := f.v6.Load()
	if t == nil {
		return nil
	}
	nh, _ := t.Lookup(dst)
	return nh
}

// Lookup6Batch looks up every dst and stores the next hops, or nil for no
// route, in out, which must be at least as long.
func (f *FIB) Lookup6Batch(dst []netip.Addr, out []*NextHop) {
	out = out[:len(dst)]
	t := f.v6.Load()
	if t == nil {
		clear(out)
		return
	}
	for i, d := range dst {
		out[i], _ = t.Lookup(d)
	}
}
