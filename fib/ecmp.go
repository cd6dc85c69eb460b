package fib

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// ECMP
//
// A route with a Group spreads its traffic over several weighted next hops.
// Its NextHop carries a Multipath; NextHop.Pick(hash), or the Flow lookup
// variants, choose a member by a flow hash (FlowHash4/FlowHash6), so every
// packet of a flow takes the same path.
//
// The choice goes through a table of 1024 buckets, each owned by the member
// with the highest weighted rendezvous score for that bucket (score =
// weight / -ln(u), u a hash of bucket and member). Picking is one table
// read. Because a member's score depends only on itself and the bucket,
// removing a member re-homes just its own buckets and adding one takes
// buckets only from others in proportion to its weight: the flows of the
// other paths stay where they were (resilient hashing, as Linux's resilient
// next-hop groups). Shares are accurate to about 1/1024.

// Hop is one member of an ECMP group.
type Hop struct {
	Via    netip.Addr // gateway; zero = on-link
	Dev    int        // ferry port index
	Weight uint32     // relative share; 0 counts as 1
}

const (
	buckets    = 1024
	maxMembers = 64
)

// Group is an immutable, validated set of weighted next hops, shared by
// any number of routes.
type Group struct {
	hops   []Hop // canonical order: by Via, then Dev
	bucket [buckets]uint8
	key    string // canonical encoding, for sharing next hops
}

// NewGroup validates and canonicalises hops. Order does not matter; a
// gateway and device may appear only once.
func NewGroup(hops ...Hop) (*Group, error) {
	if len(hops) == 0 || len(hops) > maxMembers {
		return nil, fmt.Errorf("%w: a group needs 1 to %d next hops, not %d", ErrInvalid, maxMembers, len(hops))
	}
	hs := slices.Clone(hops)
	for i := range hs {
		if hs[i].Dev < 0 {
			return nil, fmt.Errorf("%w: next hop %v needs a device", ErrInvalid, hs[i].Via)
		}
		if hs[i].Via.Is4In6() {
			return nil, fmt.Errorf("%w: next hop %v: IPv4-mapped gateway", ErrInvalid, hs[i].Via)
		}
		hs[i].Weight = max(hs[i].Weight, 1)
	}
	slices.SortFunc(hs, func(a, b Hop) int {
		if c := a.Via.Compare(b.Via); c != 0 {
			return c
		}
		return cmp.Compare(a.Dev, b.Dev)
	})
	var kb strings.Builder
	for i, h := range hs {
		if i > 0 && h.Via == hs[i-1].Via && h.Dev == hs[i-1].Dev {
			return nil, fmt.Errorf("%w: next hop %v dev %d listed twice", ErrInvalid, h.Via, h.Dev)
		}
		fmt.Fprintf(&kb, "%v/%d/%d,", h.Via, h.Dev, h.Weight)
	}
	g := &Group{hops: hs, key: kb.String()}
	for b := range g.bucket {
		best, bestScore := 0, math.Inf(-1)
		for i, h := range hs {
			if s := score(uint32(b), h); s > bestScore {
				best, bestScore = i, s
			}
		}
		g.bucket[b] = uint8(best)
	}
	return g, nil
}

// score is member h's weighted rendezvous score for bucket b.
func score(b uint32, h Hop) float64 {
	a := h.Via.As16()
	x := mix64(binary.BigEndian.Uint64(a[:8]) ^ uint64(b)<<32 ^ uint64(uint32(h.Dev)))
	x = mix64(x ^ binary.BigEndian.Uint64(a[8:]))
	u := (float64(x>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
	return float64(h.Weight) / -math.Log(u)
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Hops returns the members in canonical order.
func (g *Group) Hops() []Hop { return slices.Clone(g.hops) }

func (g *Group) String() string {
	var b strings.Builder
	for i, h := range g.hops {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("nexthop")
		if h.Via.IsValid() {
			b.WriteString(" via " + h.Via.String())
		}
		fmt.Fprintf(&b, " dev %d weight %d", h.Dev, h.Weight)
	}
	return b.String()
}

// Multipath is the dataplane's view of an ECMP group: member next hops and
// the bucket table that maps a flow hash to one of them.
type Multipath struct {
	Hops   []NextHop
	bucket *[buckets]uint8
}

func newMultipath(g *Group, r *Route) *Multipath {
	m := &Multipath{Hops: make([]NextHop, len(g.hops)), bucket: &g.bucket}
	for i, h := range g.hops {
		m.Hops[i] = NextHop{Type: Unicast, Dev: h.Dev, Route: r}
		if h.Via.Is4() {
			m.Hops[i].Gateway = addr4(h.Via)
		} else {
			m.Hops[i].Gateway6 = h.Via
		}
	}
	return m
}

// Pick returns the member of an ECMP next hop that a flow with this hash
// uses, or h itself if h is not ECMP (or nil).
func (h *NextHop) Pick(hash uint32) *NextHop {
	if h == nil || h.Multi == nil {
		return h
	}
	m := h.Multi
	// The multiply spreads any hash's entropy into the top 10 bits.
	return &m.Hops[m.bucket[(hash*0x9e3779b1)>>(32-10)]]
}

// Lookup4Flow returns the next hop for dst and, for an ECMP route, the
// member the flow with this hash uses.
func (f *FIB) Lookup4Flow(dst, hash uint32) *NextHop { return f.Lookup4(dst).Pick(hash) }

// Lookup6Flow is Lookup4Flow for IPv6.
func (f *FIB) Lookup6Flow(dst netip.Addr, hash uint32) *NextHop { return f.Lookup6(dst).Pick(hash) }

// Lookup4FlowBatch is Lookup4Batch followed by Pick with hash[i].
func (f *FIB) Lookup4FlowBatch(dst, hash []uint32, out []*NextHop) {
	f.Lookup4Batch(dst, out)
	for i, h := range out[:len(dst)] {
		if h != nil && h.Multi != nil {
			out[i] = h.Pick(hash[i])
		}
	}
}

// FlowHash4 hashes an IPv4 flow for ECMP: pass the ports for TCP and UDP
// and zeros otherwise, so that a flow's packets, fragments aside, hash
// alike. seed lets routers in one network choose differently.
func FlowHash4(seed, src, dst uint32, proto uint8, sport, dport uint16) uint32 {
	x := uint64(src)<<32 | uint64(dst)
	y := uint64(proto)<<32 | uint64(sport)<<16 | uint64(dport) | uint64(seed)<<40
	return uint32(mix64(mix64(x) ^ y))
}

// FlowHash6 is FlowHash4 for IPv6.
func FlowHash6(seed uint32, src, dst netip.Addr, proto uint8, sport, dport uint16) uint32 {
	s, d := src.As16(), dst.As16()
	x := mix64(binary.BigEndian.Uint64(s[:8]) ^ uint64(seed))
	x = mix64(x ^ binary.BigEndian.Uint64(s[8:]))
	x = mix64(x ^ binary.BigEndian.Uint64(d[:8]))
	x = mix64(x ^ binary.BigEndian.Uint64(d[8:]))
	return uint32(mix64(x ^ uint64(proto)<<32 | uint64(sport)<<16 | uint64(dport)))
}
