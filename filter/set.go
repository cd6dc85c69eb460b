package filter

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// MaxSetElements bounds a set (named or anonymous): the 100,000.
const MaxSetElements = 100000

// Sets are sorted, merged, non-overlapping closed intervals searched by
// binary search. Membership of a union of prefixes is what longest-prefix
// match answers for a set (a set has no per-prefix value), so the
// prefixes are merged into intervals: 100,000 prefixes are at most
// 100,000 intervals, 17 probes. IPv4 addresses, ports, protocols and
// marks are uint32 keys; IPv6 addresses are 128-bit keys.

type ivals32 struct{ lo, hi []uint32 }

func (s *ivals32) contains(k uint32) bool {
	lo, hi := 0, len(s.lo)
	for lo < hi { // first interval whose start is > k
		m := int(uint(lo+hi) >> 1)
		if s.lo[m] <= k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && k <= s.hi[lo-1]
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) inc() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func keyOf(b *[16]byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

type ivals128 struct{ lo, hi []u128 }

func (s *ivals128) contains(k u128) bool {
	lo, hi := 0, len(s.lo)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !k.less(s.lo[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !s.hi[lo-1].less(k)
}

// ival is one element as a closed interval of keys; IPv4 and integer
// elements use only lo.lo and hi.lo.
type ival struct{ lo, hi u128 }

// valueIval turns a parsed value into its interval.
func valueIval(v Value) ival {
	switch {
	case v.Prefix.IsValid():
		a := v.Prefix.Addr()
		lo := addrKey(a)
		bits := v.Prefix.Bits()
		if a.Is4() {
			host := uint64(1)<<(32-bits) - 1
			return ival{lo, u128{0, lo.lo | host}}
		}
		hi := lo
		if bits < 64 {
			hi.hi |= ^uint64(0) >> bits
			hi.lo = ^uint64(0)
		} else if bits < 128 {
			hi.lo |= ^uint64(0) >> (bits - 64)
		}
		return ival{lo, hi}
	case v.ALo.IsValid():
		return ival{addrKey(v.ALo), addrKey(v.AHi)}
	}
	return ival{u128{0, uint64(v.Lo)}, u128{0, uint64(v.Hi)}}
}

func addrKey(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return keyOf(&b)
}

// merge sorts intervals and joins overlapping and adjacent ones.
func merge(in []ival) []ival {
	iv := slices.Clone(in)
	slices.SortFunc(iv, func(a, b ival) int {
		if a.lo.less(b.lo) {
			return -1
		}
		if b.lo.less(a.lo) {
			return 1
		}
		return 0
	})
	out := iv[:0]
	for _, x := range iv {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// adjacent: last.hi+1 == x.lo, unless last.hi is the maximum
			if !last.hi.less(x.lo) || (last.hi != u128{^uint64(0), ^uint64(0)} && last.hi.inc() == x.lo) {
				if last.hi.less(x.hi) {
					last.hi = x.hi
				}
				continue
			}
		}
		out = append(out, x)
	}
	return out
}

// setData is one immutable version of a set's lookup structure.
// IPv4 sets of more than bartMin intervals are also a bart prefix table,
// searched instead of the intervals: with 100,000 random prefixes the
// binary search misses the cache at most of its 17 probes (IPv4: 185 to
// 197 ns against 43 to 97 ns through bart, BenchmarkSetLookup). For IPv6
// bart measured no better (175 ns intervals, 309 to 391 ns bart), so
// IPv6 sets stay intervals.
type setData struct {
	v32  ivals32
	v128 ivals128
	lite *bart.Lite
}

const bartMin = 256

func (d *setData) has4(a *[16]byte) bool {
	if d.lite != nil {
		return d.lite.Lookup(netip.AddrFrom4([4]byte(a[12:16])))
	}
	return d.v32.contains(binary.BigEndian.Uint32(a[12:]))
}

func (d *setData) has6(a *[16]byte) bool { return d.v128.contains(keyOf(a)) }

// toPrefixes splits a closed interval of keys of width bits (32 or 128)
// into the fewest prefixes that cover exactly it.
func toPrefixes(x ival, bits int, emit func(lo u128, plen int)) {
	lo, hi := x.lo, x.hi
	for {
		k := bits // the largest aligned block at lo that ends by hi
		if tz := trailingZeros(lo); tz < k {
			k = tz
		}
		for k > 0 && hi.less(lo.or(lowMask(k))) {
			k--
		}
		emit(lo, bits-k)
		end := lo.or(lowMask(k))
		if end == hi || !end.less(hi) {
			return
		}
		lo = end.inc()
	}
}

func (a u128) or(b u128) u128 { return u128{a.hi | b.hi, a.lo | b.lo} }

// lowMask is 2^k-1.
func lowMask(k int) u128 {
	switch {
	case k == 0:
		return u128{}
	case k < 64:
		return u128{0, 1<<k - 1}
	case k == 64:
		return u128{0, ^uint64(0)}
	case k < 128:
		return u128{1<<(k-64) - 1, ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

func trailingZeros(a u128) int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	if a.hi != 0 {
		return 64 + bits.TrailingZeros64(a.hi)
	}
	return 128
}

func buildSetData(iv []ival, wide bool) *setData {
	return buildSetDataMin(iv, wide, bartMin)
}

func buildSetDataMin(iv []ival, wide bool, minBart int) *setData {
	m := merge(iv)
	d := &setData{}
	for _, x := range m {
		if wide {
			d.v128.lo = append(d.v128.lo, x.lo)
			d.v128.hi = append(d.v128.hi, x.hi)
		} else {
			d.v32.lo = append(d.v32.lo, uint32(x.lo.lo))
			d.v32.hi = append(d.v32.hi, uint32(x.hi.lo))
		}
	}
	if len(m) > minBart && !wide {
		d.lite = new(bart.Lite)
		for _, x := range m {
			toPrefixes(x, 32, func(lo u128, plen int) {
				v := uint32(lo.lo)
				d.lite.Insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), plen))
			})
		}
	}
	return d
}

// namedSet is a set the API changes at run time. Writers serialize on
// mu and publish a new setData with one atomic store (copy on write):
// a packet sees the old or the new set, never a mix.
type namedSet struct {
	table, name string // table is "family name": "inet filter"
	decl        *Set
	field       Field // the field whose values the elements are
	mu          sync.Mutex
	elems       []ival // as added, for the listing and deletes
	cur         atomic.Pointer[setData]
}

func (s *namedSet) wide() bool { return s.decl.Type == SetIPv6 }

func (s *namedSet) publish() { s.cur.Store(buildSetData(s.elems, s.wide())) }

// parseElems parses element strings for the set, as config and the
// control API write them.
func (s *namedSet) parseElems(elems []string) ([]ival, error) {
	out := make([]ival, 0, len(elems))
	for _, e := range elems {
		v, msg := parseValue(s.field, strings.TrimSpace(e))
		if msg != "" {
			return nil, fmt.Errorf("set %s: %s", s.name, msg)
		}
		if err := s.checkInterval(v); err != "" {
			return nil, fmt.Errorf("set %s: %s", s.name, err)
		}
		out = append(out, valueIval(v))
	}
	return out, nil
}

// checkInterval refuses prefixes and ranges in a set without `flags
// interval`, as nft does.
func (s *namedSet) checkInterval(v Value) string {
	if s.decl.Interval {
		return ""
	}
	iv := valueIval(v)
	if iv.lo != iv.hi {
		return fmt.Sprintf("element %s is a prefix or range: the set needs `flags interval`", elemString(s.decl.Type, iv))
	}
	return ""
}

// AddElements adds elements ("192.0.2.0/24", "198.51.100.7",
// "10.0.0.1-10.0.0.9", "22", "1000-2000") to a named set. name is the
// set's name, or "family table name" when two tables have a set of that
// name. Elements already present are ignored. Nothing changes on error.
func (p *Program) AddElements(name string, elems []string) error {
	s, err := p.lookupSet(name)
	if err != nil {
		return err
	}
	ivs, err := s.parseElems(elems)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	have := make(map[ival]bool, len(s.elems)+len(ivs))
	for _, x := range s.elems {
		have[x] = true
	}
	next := slices.Clone(s.elems)
	for _, x := range ivs {
		if !have[x] {
			have[x] = true
			next = append(next, x)
		}
	}
	if len(next) > MaxSetElements {
		return fmt.Errorf("set %s: %d elements exceeds %d", s.name, len(next), MaxSetElements)
	}
	s.elems = next
	s.publish()
	return nil
}

// DelElements removes elements from a named set; each must be present,
// written as it was added (a prefix removes that prefix, not the
// addresses it covers). Nothing changes on error.
func (p *Program) DelElements(name string, elems []string) error {
	s, err := p.lookupSet(name)
	if err != nil {
		return err
	}
	ivs, err := s.parseElems(elems)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	del := make(map[ival]bool, len(ivs))
	for _, x := range ivs {
		del[x] = true
	}
	next := make([]ival, 0, len(s.elems))
	for _, x := range s.elems {
		if del[x] {
			delete(del, x)
			continue
		}
		next = append(next, x)
	}
	for i, x := range ivs {
		if del[x] {
			return fmt.Errorf("set %s: element %s is not in the set", s.name, strings.TrimSpace(elems[i]))
		}
	}
	s.elems = next
	s.publish()
	return nil
}

// SetElements returns a named set's elements as the listing prints them.
func (p *Program) SetElements(name string) ([]string, error) {
	s, err := p.lookupSet(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.elems))
	for i, x := range s.elems {
		out[i] = elemString(s.decl.Type, x)
	}
	return out, nil
}

func (p *Program) lookupSet(name string) (*namedSet, error) {
	var found *namedSet
	n := 0
	for _, s := range p.sets {
		full := s.table + " " + s.name
		if s.name == name || full == name {
			found = s
			n++
		}
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("unknown set %q", name)
	case n > 1:
		return nil, fmt.Errorf("set %q is in more than one table: name it \"family table set\"", name)
	}
	if found.decl.Constant {
		return nil, fmt.Errorf("set %s is constant", name)
	}
	return found, nil
}

// elemString prints an interval the way nft lists it: an address, a
// prefix when the interval is one, else a range.
func elemString(t SetType, x ival) string {
	switch t {
	case SetIPv4:
		lo, hi := uint32(x.lo.lo), uint32(x.hi.lo)
		a := netip.AddrFrom4([4]byte{byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)})
		if lo == hi {
			return a.String()
		}
		if bits, ok := prefixLen32(lo, hi); ok {
			return netip.PrefixFrom(a, bits).String()
		}
		b := netip.AddrFrom4([4]byte{byte(hi >> 24), byte(hi >> 16), byte(hi >> 8), byte(hi)})
		return a.String() + "-" + b.String()
	case SetIPv6:
		a, b := addr16(x.lo), addr16(x.hi)
		if x.lo == x.hi {
			return a.String()
		}
		for bits := 0; bits < 128; bits++ {
			pf := netip.PrefixFrom(a, bits)
			if pf.Masked().Addr() == a && valueIval(Value{Prefix: pf}).hi == x.hi {
				return pf.String()
			}
		}
		return a.String() + "-" + b.String()
	}
	f := setField(t)
	return intRange(&fields[f], uint32(x.lo.lo), uint32(x.hi.lo))
}

func addr16(k u128) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// prefixLen32 reports whether [lo, hi] is exactly one IPv4 prefix.
func prefixLen32(lo, hi uint32) (int, bool) {
	host := lo ^ hi
	if host&(host+1) != 0 || lo&host != 0 {
		return 0, false
	}
	n := 32
	for host != 0 {
		host >>= 1
		n--
	}
	return n, true
}
