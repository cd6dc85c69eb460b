package fib

import (
	"net/netip"
	"sync/atomic"
)

// Entry layout, shared by tbl24 and tbl8:
//
//	bit 31      extended: bits 0-24 index a tbl8 group (tbl24 only)
//	bits 25-30  matching prefix length + 1; 0 means no route
//	bits 0-24   next-hop slot (or tbl8 group when extended)
const (
	extBit     = 1 << 31
	depthShift = 25
	idxMask    = 1<<depthShift - 1
	maxGroups  = 1 << 22 // 4 GiB of tbl8; far beyond any real table
)

func mkEntry(slot uint32, bits int) uint32 { return uint32(bits+1)<<depthShift | slot }

// depth returns the encoded depth (prefix length + 1, 0 = none) of a
// non-extended entry.
func depth(e uint32) uint32 { return e >> depthShift & 63 }

// nhKey identifies a forwarding action; routes sharing one share a slot.
type nhKey struct {
	typ   RouteType
	dev   int
	via   netip.Addr
	group string // Group.key for ECMP
}

func key(r *Route) nhKey {
	k := nhKey{typ: r.Type, dev: r.Dev, via: r.Via}
	if r.Group != nil {
		k.group = r.Group.key
	}
	return k
}

// newNextHop makes the shared next hop for routes with r's key.
func newNextHop(r *Route) NextHop {
	nh := NextHop{Type: r.Type, Dev: r.Dev, Route: r}
	if r.Via.Is4() {
		nh.Gateway = addr4(r.Via)
	} else {
		nh.Gateway6 = r.Via
	}
	if r.Group != nil {
		nh.Multi = newMultipath(r.Group, r)
		first := nh.Multi.Hops[0]
		nh.Dev, nh.Gateway, nh.Gateway6 = first.Dev, first.Gateway, first.Gateway6
	}
	return nh
}

// gen is one generation of the forwarding tables. Readers use tbl24, tbl8
// and nh; the remaining fields are the writers' bookkeeping.
type gen struct {
	tbl24 *[1 << 24]uint32 // nil until the FIB holds an IPv4 route
	tbl8  []uint32         // groups of 256; capacity fixed per generation
	nh    atomic.Pointer[[]NextHop]

	groups     int // tbl8 groups handed out (never reused)
	deadGroups int

	nhs     []NextHop // writer's copy; shares its backing array with *nh
	refs    []int32
	keys    []nhKey
	slots   map[nhKey]uint32
	deadNHs int
}

func newGen(v4 bool, groups int) *gen {
	g := &gen{slots: make(map[nhKey]uint32)}
	if v4 {
		g.tbl24 = new([1 << 24]uint32)
		g.tbl8 = make([]uint32, min(groups, maxGroups)<<8)
	}
	empty := []NextHop{}
	g.nh.Store(&empty)
	return g
}

// acquire returns a slot holding r's next hop, taking a reference.
func (g *gen) acquire(r *Route) uint32 {
	k := key(r)
	if s, ok := g.slots[k]; ok {
		g.refs[s]++
		return s
	}
	nh := newNextHop(r)
	s := uint32(len(g.nhs))
	// Appending within capacity writes past every published length, where
	// no reader looks; a reallocation leaves the old array to its readers.
	g.nhs = append(g.nhs, nh)
	g.refs = append(g.refs, 1)
	g.keys = append(g.keys, k)
	g.slots[k] = s
	pub := g.nhs
	g.nh.Store(&pub)
	return s
}

// release drops a reference; an unreferenced slot is dead and never reused
// in this generation, because readers may still be about to read it.
func (g *gen) release(s uint32) {
	g.refs[s]--
	if g.refs[s] == 0 {
		delete(g.slots, g.keys[s])
		g.deadNHs++
	}
}

// wasteful reports whether dead slots or groups outnumber live ones enough
// to be worth a rebuild.
func (g *gen) wasteful() bool {
	liveNH := len(g.nhs) - g.deadNHs
	liveG := g.groups - g.deadGroups
	return (g.deadNHs > 1024 && g.deadNHs > liveNH) || (g.deadGroups > 1024 && g.deadGroups > liveG) ||
		len(g.nhs) >= idxMask
}

// install sets p's entries to slot wherever no longer prefix owns them. It
// returns false, changing nothing, if p needs a tbl8 group and none is
// left, or the slot does not fit an entry.
func (g *gen) install(p netip.Prefix, slot uint32) bool {
	if slot > idxMask {
		return false
	}
	a, bits := addr4(p.Addr()), p.Bits()
	v := mkEntry(slot, bits)
	d := depth(v)
	t := g.tbl24
	if bits <= 24 {
		for i := a >> 8; i < a>>8+1<<(24-bits); i++ {
			e := atomic.LoadUint32(&t[i])
			if e&extBit != 0 {
				grp := g.tbl8[int(e&idxMask)<<8:][:256]
				for j := range grp {
					if depth(grp[j]) <= d {
						atomic.StoreUint32(&grp[j], v)
					}
				}
			} else if depth(e) <= d {
				atomic.StoreUint32(&t[i], v)
			}
		}
		return true
	}
	i := a >> 8
	e := atomic.LoadUint32(&t[i])
	if e&extBit == 0 {
		if (g.groups+1)<<8 > len(g.tbl8) {
			return false
		}
		gi := uint32(g.groups)
		g.groups++
		grp := g.tbl8[int(gi)<<8:][:256]
		// The group is fresh and unreachable, so plain stores do; the
		// atomic store into tbl24 below publishes them.
		for j := range grp {
			grp[j] = e
		}
		lo := a & 0xff
		for j := lo; j < lo+1<<(32-bits); j++ {
			grp[j] = v
		}
		atomic.StoreUint32(&t[i], extBit|gi)
		return true
	}
	grp := g.tbl8[int(e&idxMask)<<8:][:256]
	lo := a & 0xff
	for j := lo; j < lo+1<<(32-bits); j++ {
		if depth(grp[j]) <= d {
			atomic.StoreUint32(&grp[j], v)
		}
	}
	return true
}

// fill sets p's entries to slot in a generation no reader has seen yet,
// for prefixes of /24 or shorter installed shortest first, where every
// entry in range is overwritten. copy is one bulk operation (and one range
// check under the race detector) rather than 2^(24-L) atomic stores.
func (g *gen) fill(p netip.Prefix, slot uint32) {
	a, bits := addr4(p.Addr()), p.Bits()
	r := g.tbl24[a>>8 : a>>8+1<<(24-bits)]
	r[0] = mkEntry(slot, bits)
	for n := 1; n < len(r); n *= 2 {
		copy(r[n:], r[:n])
	}
}

// repoint changes the entries p owns to slot, for a change of p's best
// route.
func (g *gen) repoint(p netip.Prefix, slot uint32) {
	g.replaceOwned(p, mkEntry(slot, p.Bits()))
}

// uninstall hands the entries p owns to its covering route's entry value
// (0 if none) and folds a tbl8 group back into tbl24 once nothing longer
// than /24 is left in it.
func (g *gen) uninstall(p netip.Prefix, cover uint32) {
	g.replaceOwned(p, cover)
	if p.Bits() <= 24 {
		return
	}
	i := addr4(p.Addr()) >> 8
	e := atomic.LoadUint32(&g.tbl24[i])
	grp := g.tbl8[int(e&idxMask)<<8:][:256]
	for j := range grp {
		if depth(grp[j]) > 25 {
			return
		}
	}
	// Every entry now comes from the same ≤/24 prefix (or none). The group
	// is left as it is for readers that already hold its index.
	atomic.StoreUint32(&g.tbl24[i], grp[0])
	g.deadGroups++
}

// replaceOwned stores v in every entry whose depth says p set it.
func (g *gen) replaceOwned(p netip.Prefix, v uint32) {
	a, bits := addr4(p.Addr()), p.Bits()
	d := uint32(bits + 1)
	t := g.tbl24
	if bits <= 24 {
		for i := a >> 8; i < a>>8+1<<(24-bits); i++ {
			e := atomic.LoadUint32(&t[i])
			if e&extBit != 0 {
				grp := g.tbl8[int(e&idxMask)<<8:][:256]
				for j := range grp {
					if depth(grp[j]) == d {
						atomic.StoreUint32(&grp[j], v)
					}
				}
			} else if depth(e) == d {
				atomic.StoreUint32(&t[i], v)
			}
		}
		return
	}
	e := atomic.LoadUint32(&t[a>>8])
	grp := g.tbl8[int(e&idxMask)<<8:][:256]
	lo := a & 0xff
	for j := lo; j < lo+1<<(32-bits); j++ {
		if depth(grp[j]) == d {
			atomic.StoreUint32(&grp[j], v)
		}
	}
}
