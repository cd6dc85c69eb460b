package fib

import (
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
)

// The IPv6 table is a multibit trie: a direct array over the first 16 bits
// of the address, then one node per further byte. Values are pushed down to
// the leaves, so a lookup walks from the root and stops at the first slot
// that is not a child, without backtracking. Nodes are compressed with two
// bitmaps over their 256 slots: kidBits marks the slots that hold a child,
// runBits the slots where a run of equal next hops begins among the others;
// counting set bits below a slot indexes the dense kids and leaves arrays.
//
// Readers only ever see immutable nodes. An update builds the nodes it
// changes aside, copying the path from the changed prefix up to the root
// slot (siblings are copied by value, sharing their own children), and
// publishes with one atomic store: of the root slot for a prefix longer than
// /16, of a copy of the whole root for /16 or shorter, which covers several
// root slots. The writer keeps a shadow trie of the same shape holding each
// prefix once, without pushing, from which it builds the reader nodes.

// node6 is a reader node for one byte of the address. The fields a walk
// needs to descend come first and fill 64 bytes, so a step down touches
// one or two cache lines of the node and the last step two or three.
type node6 struct {
	kidBits [4]uint64
	kids    []node6 // one per set bit of kidBits, in slot order
	// kidBase and runBase hold the set bits of kidBits and runBits in
	// the words before each word, so ranking a slot takes one popcount.
	kidBase [4]uint8
	runBase [4]uint8
	runBits [4]uint64
	leaves  []*NextHop // one per set bit of runBits; nil = no route
}

// trie6 is what IPv6 readers load. Its root slots are replaced in place
// (atomically) for updates under one root slot.
type trie6 struct {
	root [1 << 16]atomic.Pointer[node6]
}

// lowMask has bits 0 to x set: none for x < 0, all for x ≥ 63.
func lowMask(x int) uint64 { return ^uint64(0) >> uint(63-min(max(x, -1), 63)) }

// upTo counts the set bits of b at positions 0 to s. Lookups use the
// stored bases instead; this serves the writers, which have no bases for
// the shadow trie.
func upTo(b *[4]uint64, s uint) int {
	x := int(s)
	return bits.OnesCount64(b[0]&lowMask(x)) + bits.OnesCount64(b[1]&lowMask(x-64)) +
		bits.OnesCount64(b[2]&lowMask(x-128)) + bits.OnesCount64(b[3]&lowMask(x-192))
}

func hasBit(b *[4]uint64, s uint) bool { return b[s>>6&3]&(1<<(s&63)) != 0 }

// bitsTo keeps the bits of a word at positions 0 to s&63.
func bitsTo(s uint) uint64 { return 2<<(s&63) - 1 }

func (t *trie6) lookup(b *[16]byte) *NextHop {
	n := t.root[uint(b[0])<<8|uint(b[1])].Load()
	for i := 2; ; i++ {
		s := uint(b[i&15])
		w := s >> 6 & 3
		if n.kidBits[w]&(1<<(s&63)) == 0 {
			return n.leaves[int(n.runBase[w])+bits.OnesCount64(n.runBits[w]&bitsTo(s))-1]
		}
		n = &n.kids[int(n.kidBase[w])+bits.OnesCount64(n.kidBits[w]&bitsTo(s))-1]
	}
}

// setBases fills in kidBase and runBase from the bitmaps.
func (n *node6) setBases() {
	k, r := 0, 0
	for w := range 4 {
		n.kidBase[w], n.runBase[w] = uint8(k), uint8(r)
		k += bits.OnesCount64(n.kidBits[w])
		r += bits.OnesCount64(n.runBits[w])
	}
}

// wnode is the writer's shadow of a node6: the prefixes whose last byte
// falls in this node, and the children that have prefixes below them.
type wnode struct {
	kidBits [4]uint64
	kids    []*wnode
	routes  []wroute // sorted by length, so painting them in order leaves the longest
	n       int      // prefixes in this subtree
}

// wroute is a prefix inside its node: the first slot it covers and its
// length beyond the node's depth (1 to 8).
type wroute struct {
	lo, bits uint8
	nh       *NextHop
}

func (r wroute) hi() int { return int(r.lo) + 1<<(8-r.bits) }

func (w *wnode) kid(s uint) *wnode {
	if !hasBit(&w.kidBits, s) {
		return nil
	}
	return w.kids[upTo(&w.kidBits, s)-1]
}

// writer6 is the writers' side of the IPv6 table; f.mu guards it.
type writer6 struct {
	kids  [1 << 16]*wnode
	val   [1 << 16]*NextHop // best route of /16 or shorter for each root slot
	vlen  [1 << 16]uint8    // its length + 1; 0 = none
	short map[netip.Prefix]*NextHop
	leafs map[*NextHop]*node6 // shared childless root nodes, by value
}

func newWriter6() *writer6 {
	return &writer6{short: make(map[netip.Prefix]*NextHop), leafs: make(map[*NextHop]*node6)}
}

// leaf returns a node that maps every address to nh, for a root slot with
// nothing longer than /16 below it. These are shared, so a /0 does not
// cost 65,536 nodes.
func (x *writer6) leaf(nh *NextHop) *node6 {
	if n := x.leafs[nh]; n != nil {
		return n
	}
	if len(x.leafs) > 1024 {
		// Next hops come and go; the nodes already published stay valid.
		clear(x.leafs)
	}
	n := &node6{runBits: [4]uint64{1}, leaves: []*NextHop{nh}}
	n.setBases()
	x.leafs[nh] = n
	return n
}

// set records p's next hop (nil to remove p) in the shadow trie only.
func (x *writer6) set(p netip.Prefix, nh *NextHop) {
	a, pl := p.Addr().As16(), p.Bits()
	if pl <= 16 {
		if nh == nil {
			delete(x.short, p)
		} else {
			x.short[p] = nh
		}
		return
	}
	rs := uint(a[0])<<8 | uint(a[1])
	var path [16]*wnode
	w := x.kids[rs]
	if w == nil {
		if nh == nil {
			return
		}
		w = new(wnode)
		x.kids[rs] = w
	}
	d := 16
	for ; pl > d+8; d += 8 {
		path[d/8] = w
		s := uint(a[d/8])
		k := w.kid(s)
		if k == nil {
			if nh == nil {
				return
			}
			k = new(wnode)
			w.kidBits[s>>6] |= 1 << (s & 63)
			w.kids = slices.Insert(w.kids, upTo(&w.kidBits, s)-1, k)
		}
		w = k
	}
	path[d/8] = w
	rb := uint8(pl - d)
	r := wroute{lo: a[d/8] &^ (0xff >> rb), bits: rb, nh: nh}
	i, found := slices.BinarySearchFunc(w.routes, r, func(o, r wroute) int {
		if o.bits != r.bits {
			return int(o.bits) - int(r.bits)
		}
		return int(o.lo) - int(r.lo)
	})
	delta := 0
	switch {
	case found && nh != nil:
		w.routes[i].nh = nh
		return
	case found:
		w.routes = slices.Delete(w.routes, i, i+1)
		delta = -1
	case nh != nil:
		w.routes = slices.Insert(w.routes, i, r)
		delta = 1
	default:
		return
	}
	for e := d; e >= 16; e -= 8 {
		path[e/8].n += delta
	}
	if delta > 0 {
		return
	}
	// Drop emptied nodes bottom up, so kids always have prefixes below.
	for e := d; e >= 16 && path[e/8].n == 0; e -= 8 {
		if e == 16 {
			x.kids[rs] = nil
			break
		}
		up, s := path[e/8-1], uint(a[e/8-1])
		up.kids = slices.Delete(up.kids, upTo(&up.kidBits, s)-1, upTo(&up.kidBits, s))
		up.kidBits[s>>6] &^= 1 << (s & 63)
	}
}

// paintRoot recomputes val and vlen over the root slots p covers (p of /16
// or shorter) from the short routes.
func (x *writer6) paintRoot(p netip.Prefix) {
	a, pl := p.Addr().As16(), p.Bits()
	lo := int(a[0])<<8 | int(a[1])
	hi := lo + 1<<(16-pl)
	var nh *NextHop
	l := uint8(0)
	for b := pl - 1; b >= 0; b-- {
		q, _ := p.Addr().Prefix(b)
		if h := x.short[q]; h != nil {
			nh, l = h, uint8(b+1)
			break
		}
	}
	for s := lo; s < hi; s++ {
		x.val[s], x.vlen[s] = nh, l
	}
	var in []netip.Prefix
	for q := range x.short {
		if q.Bits() >= pl && p.Contains(q.Addr()) {
			in = append(in, q)
		}
	}
	slices.SortFunc(in, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	for _, q := range in {
		b := q.Addr().As16()
		s := int(b[0])<<8 | int(b[1])
		for e := s + 1<<(16-q.Bits()); s < e; s++ {
			x.val[s], x.vlen[s] = x.short[q], uint8(q.Bits()+1)
		}
	}
}

// change describes the prefix an update touched, so that rebuilding can
// reuse every node it cannot have affected. all means nothing is reused.
type change struct {
	a   [16]byte
	pl  int
	all bool
}

// affects reports whether the child under slot s of a node at depth d that
// overlaps the change needs rebuilding, given l, the length + 1 of the best
// route for that slot after the change.
func (c *change) affects(d int, s uint, l uint8) bool {
	switch {
	case c.all:
		return true
	case c.pl > d+8:
		return uint(c.a[d/8]) == s
	case c.pl > d:
		lo := uint(c.a[d/8]) &^ (0xff >> (c.pl - d))
		if s < lo || s >= lo+1<<(d+8-c.pl) {
			return false
		}
	}
	// The slot lies inside the changed prefix: its subtree inherits the
	// change unless a longer prefix covers it.
	return int(l) <= c.pl+1
}

// build makes the reader node for w at depth d, under a route with next hop
// up and length + 1 upLen. Children c cannot have affected are copied from
// old (nil when w is new).
func (x *writer6) build(w *wnode, d int, up *NextHop, upLen uint8, old *node6, c *change) node6 {
	if old != nil && !c.all && c.pl > d+8 {
		// The change is below one child and leaves this node's own
		// routes alone: copy the node and swap that child, unless it
		// appears, goes or folds, which changes the leaves too.
		s := uint(c.a[d/8])
		if kw := w.kid(s); kw != nil && hasBit(&old.kidBits, s) {
			v, l := up, upLen
			for _, r := range w.routes {
				if uint(r.lo) <= s && int(s) < r.hi() {
					v, l = r.nh, uint8(d+int(r.bits)+1)
				}
			}
			i := upTo(&old.kidBits, s) - 1
			cn := x.build(kw, d+8, v, l, &old.kids[i], c)
			if len(cn.kids) > 0 || len(cn.leaves) > 1 {
				n := *old
				n.kids = slices.Clone(old.kids)
				n.kids[i] = cn
				return n
			}
		}
	}
	// Paint the slots with bulk copies, shortest route first so the
	// longest covering route wins each slot.
	var vals [256]*NextHop
	vals[0] = up
	for i := 1; i < len(vals); i *= 2 {
		copy(vals[i:], vals[:i])
	}
	for _, r := range w.routes {
		v := vals[r.lo:r.hi()]
		v[0] = r.nh
		for i := 1; i < len(v); i *= 2 {
			copy(v[i:], v[:i])
		}
	}
	var n node6
	kids := make([]node6, 0, len(w.kids))
	k := 0
	for wd, m := range w.kidBits {
		for ; m != 0; m &= m - 1 {
			s := uint(wd<<6 + bits.TrailingZeros64(m))
			kw := w.kids[k]
			k++
			l := upLen
			for i := len(w.routes) - 1; i >= 0; i-- {
				if r := w.routes[i]; uint(r.lo) <= s && int(s) < r.hi() {
					l = uint8(d + int(r.bits) + 1)
					break
				}
			}
			var oc *node6
			if old != nil && hasBit(&old.kidBits, s) {
				oc = &old.kids[upTo(&old.kidBits, s)-1]
			}
			var cn node6
			if oc == nil || c.affects(d, s, l) {
				cn = x.build(kw, d+8, vals[s], l, oc, c)
			} else {
				cn = *oc
			}
			if len(cn.kids) == 0 && len(cn.leaves) == 1 {
				// A child that maps its whole range to one next hop (often
				// a more specific with the same next hop as its cover)
				// folds into this node's leaves: less memory and one step
				// less.
				vals[s] = cn.leaves[0]
				continue
			}
			n.kidBits[s>>6] |= 1 << (s & 63)
			kids = append(kids, cn)
		}
	}
	if len(kids) < cap(kids) {
		kids = slices.Clone(kids)
	}
	n.kids = kids
	runs := 0
	var prev *NextHop
	for wd := range n.kidBits {
		for m := ^n.kidBits[wd]; m != 0; m &= m - 1 {
			s := wd<<6 + bits.TrailingZeros64(m)
			if runs == 0 || vals[s] != prev {
				n.runBits[wd] |= 1 << (s & 63)
				prev = vals[s]
				runs++
			}
		}
	}
	n.leaves = make([]*NextHop, 0, runs)
	for wd, m := range n.runBits {
		for ; m != 0; m &= m - 1 {
			n.leaves = append(n.leaves, vals[wd<<6+bits.TrailingZeros64(m)])
		}
	}
	n.setBases()
	return n
}

// rootNode makes the node for root slot s after change c.
func (x *writer6) rootNode(s int, old *node6, c *change) *node6 {
	w := x.kids[s]
	if w == nil {
		return x.leaf(x.val[s])
	}
	if old != nil && c.pl <= 16 && !c.all && int(x.vlen[s]) > c.pl+1 {
		return old
	}
	n := x.build(w, 16, x.val[s], x.vlen[s], old, c)
	if len(n.kids) == 0 && len(n.leaves) == 1 {
		return x.leaf(n.leaves[0])
	}
	return &n
}

// update applies p → nh (nil removes p) and publishes the result.
func (f *FIB) update6(p netip.Prefix, nh *NextHop) {
	x, t := f.w6, f.v6.Load()
	if x == nil {
		x, t = newWriter6(), new(trie6)
		for s := range t.root {
			t.root[s].Store(x.leaf(nil))
		}
		f.w6 = x
		f.v6.Store(t)
	}
	x.set(p, nh)
	c := &change{a: p.Addr().As16(), pl: p.Bits()}
	if c.pl > 16 {
		s := int(c.a[0])<<8 | int(c.a[1])
		t.root[s].Store(x.rootNode(s, t.root[s].Load(), c))
		return
	}
	x.paintRoot(p)
	nt := new(trie6)
	lo := int(c.a[0])<<8 | int(c.a[1])
	hi := lo + 1<<(16-c.pl)
	for s := range nt.root {
		n := t.root[s].Load()
		if s >= lo && s < hi {
			n = x.rootNode(s, n, c)
		}
		nt.root[s].Store(n)
	}
	f.v6.Store(nt)
}

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

// set6 installs the next hop of e's best route.
func (f *FIB) set6(e *ribEntry) {
	old := e.nh6
	e.nh6 = f.acquire6(e.routes[0])
	f.update6(e.prefix, e.nh6)
	if old != nil {
		f.release6(old)
	}
}

func (f *FIB) delete6(e *ribEntry) {
	f.update6(e.prefix, nil)
	f.release6(e.nh6)
	e.nh6 = nil
}

// get6 finds the longest matching prefix in the shadow trie.
func (f *FIB) get6(a netip.Addr) (Route, bool) {
	x := f.w6
	if x == nil {
		return Route{}, false
	}
	b := a.As16()
	s := int(b[0])<<8 | int(b[1])
	best := int(x.vlen[s]) - 1
	w := x.kids[s]
	for d := 16; w != nil; d += 8 {
		sl := b[d/8]
		for _, r := range w.routes {
			if sl >= r.lo && int(sl) < r.hi() {
				best = d + int(r.bits)
			}
		}
		w = w.kid(uint(sl))
	}
	if best < 0 {
		return Route{}, false
	}
	p, _ := a.Prefix(best)
	return *f.rib[p].routes[0], true
}

// build6 makes a fresh IPv6 table from the RIB's IPv6 entries, or nils if
// there are none.
func build6(rib map[netip.Prefix]*ribEntry) (*trie6, *writer6, map[nhKey]*nhRef) {
	f := &FIB{nh6: make(map[nhKey]*nhRef)}
	var x *writer6
	for _, e := range rib {
		if e.prefix.Addr().Is6() {
			if x == nil {
				x = newWriter6()
			}
			e.nh6 = f.acquire6(e.routes[0])
			x.set(e.prefix, e.nh6)
		}
	}
	if x == nil {
		return nil, nil, f.nh6
	}
	x.paintRoot(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	t := new(trie6)
	c := &change{all: true}
	for s := range t.root {
		t.root[s].Store(x.rootNode(s, nil, c))
	}
	return t, x, f.nh6
}

// Lookup6 returns the next hop for dst (IPv6), or nil if no route
// matches. It never blocks and does not allocate.
func (f *FIB) Lookup6(dst netip.Addr) *NextHop {
	t := f.v6.Load()
	if t == nil || !dst.Is6() {
		return nil
	}
	b := dst.As16()
	return t.lookup(&b)
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
	t.lookupBatch(dst, out)
}

// lookupBatch walks groups of addresses a byte at a time, all of a group
// at each step, so that their cache misses overlap instead of queueing
// behind each other as in a loop of single lookups.
func (t *trie6) lookupBatch(dst []netip.Addr, out []*NextHop) {
	const lanes = 8
	var b [lanes][16]byte
	var n [lanes]*node6
	for len(dst) >= lanes {
		var live uint
		for j := range lanes {
			b[j] = dst[j].As16()
			n[j] = t.root[uint(b[j][0])<<8|uint(b[j][1])].Load()
			out[j] = nil
			if dst[j].Is6() {
				live |= 1 << j
			}
		}
		for i := 2; live != 0; i++ {
			for j := range lanes {
				if live&(1<<j) == 0 {
					continue
				}
				c := n[j]
				s := uint(b[j][i&15])
				w := s >> 6 & 3
				if c.kidBits[w]&(1<<(s&63)) == 0 {
					out[j] = c.leaves[int(c.runBase[w])+bits.OnesCount64(c.runBits[w]&bitsTo(s))-1]
					live &^= 1 << j
					continue
				}
				n[j] = &c.kids[int(c.kidBase[w])+bits.OnesCount64(c.kidBits[w]&bitsTo(s))-1]
			}
		}
		dst, out = dst[lanes:], out[lanes:]
	}
	for i, d := range dst {
		out[i] = nil
		if d.Is6() {
			a := d.As16()
			out[i] = t.lookup(&a)
		}
	}
}
