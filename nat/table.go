package nat

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is an IPv4 address and a TCP/UDP port, or for ICMP queries the
// query identifier.
type Endpoint struct {
	Addr [4]byte
	Port uint16 // the ICMP query identifier for ICMP
}

// Filtering is what a mapping lets in from outside (RFC 4787 section 5).
type Filtering uint8

const (
	// EndpointIndependent (the default): any remote may send to a live
	// mapping (RFC 4787 REQ-8 recommends it; peer-to-peer needs it).
	EndpointIndependent Filtering = iota
	// AddressDependent: only remotes whose address the inside endpoint
	// sent to.
	AddressDependent
	// AddressPortDependent: only remote address and port pairs the inside
	// endpoint sent to.
	AddressPortDependent
)

func (f Filtering) String() string {
	switch f {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressPortDependent:
		return "address-port-dependent"
	}
	return "unknown"
}

// Pool is where source NAT maps to: addresses Lo..Hi (inclusive;
// masquerade passes the port's address as Lo == Hi), ports PortLo..PortHi
// (0, 0: any port, keeping the class of the original; see Map).
//
// Lo also names the mapping domain: mappings are keyed by protocol, inside
// endpoint and pool Lo, so one inside endpoint leaving through two
// masquerading ports (two pools) has one mapping on each. Pools that share
// Lo share their mappings; change a pool's range only with a Flush.
type Pool struct {
	Lo, Hi         [4]byte
	PortLo, PortHi uint16
	Filtering      Filtering
}

// Config sizes a Table.
type Config struct {
	// MaxMappings bounds the table (0: DefaultMaxMappings; at most
	// MaxMaxMappings). Beyond it Map returns ErrTableFull, after trying to
	// reclaim the oldest lingering mapping of the shard it needs.
	MaxMappings int
	// Linger is how long a mapping with no sessions lives on (0:
	// DefaultLinger; negative: none, Expire frees it at its next call), so
	// an inside endpoint reusing its port soon keeps its external endpoint.
	Linger time.Duration
}

const (
	// DefaultMaxMappings is Config.MaxMappings when unset.
	DefaultMaxMappings = 262144
	// MaxMaxMappings is the largest bound a table takes (mapping ids hold a
	// 25-bit slot index).
	MaxMaxMappings = 1 << 24
	// DefaultLinger is Config.Linger when unset.
	DefaultLinger = 30 * time.Second
	// MaxRemotes is how many recent remote endpoints a mapping remembers
	// for filtering.
	MaxRemotes = 8
)

// Errors Map returns; the packet should be dropped and counted.
var (
	// ErrTableFull: MaxMappings mappings exist and none of the shard's
	// could be reclaimed.
	ErrTableFull = errors.New("nat: mapping table full")
	// ErrPoolExhausted: no free external endpoint was found in the pool
	// (see Map for how hard it looks).
	ErrPoolExhausted = errors.New("nat: pool exhausted")
	// ErrProtocol: only TCP, UDP, UDP-Lite and ICMP are translated.
	ErrProtocol = errors.New("nat: protocol not translated")
	// ErrBadPool: a nil pool, Lo above Hi or PortLo above PortHi.
	ErrBadPool = errors.New("nat: invalid pool")
	// ErrInUse: AddStatic's inside or external endpoint already has a
	// mapping.
	ErrInUse = errors.New("nat: endpoint already mapped")
)

// IP protocol numbers the table translates.
const (
	ProtoICMP    = 1
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoUDPLite = 136
)

const (
	maxShards = 256
	// minShare keeps a shard's share of MaxMappings large enough that hash
	// imbalance stays far below the 1.5x headroom a shard gets.
	minShare = 1024
	slabSize = 1024
	nilRef   = ^uint32(0)
	genMask  = 0x7f
	idShift  = 25
)

// mapping is one slot: no pointers, so slabs are never scanned by the GC.
// Fields marked (both) are written with the owner shard's and the external
// endpoint's shard locks held; the rest with the owner shard's lock.
type mapping struct {
	inside  Endpoint  // (both) fixed while live
	ext     Endpoint  // (both) fixed while live
	dom     [4]byte   // (both) pool Lo: the mapping domain
	proto   uint8     // (both)
	filt    Filtering // (both)
	live    bool      // (both)
	gen     uint8     // (both) bumped on free; low 7 bits in the id
	nrem    uint8     // remotes held
	rhead   uint8     // next remote slot to overwrite
	refs    int32     // sessions holding the mapping
	self    uint32    // global slot ref: local<<shardBits | shard
	next    [2]uint32 // chain links: 0 inside chain (owner shard), 1 ext chain (ext's shard)
	lprev   uint32    // linger list links (owner shard), while refs == 0
	lnext   uint32    //
	last    int64     // last Map or Inbound; when refs == 0, the Release that dropped it
	remotes [MaxRemotes]Endpoint
}

// Table holds the mappings: sharded by hash so no lock is global. See the
// package doc.
type Table struct {
	shards    []shard
	shardBits uint
	shardMask uint32
	seedIn    uint64
	seedExt   uint64
	linger    int64
	max       int64
	count     atomic.Int64 // live mappings, all shards (the bound)

	expMu    sync.Mutex
	expShard int
}

type shard struct {
	mu    sync.Mutex
	inB   []uint32 // inside chain heads (global refs)
	extB  []uint32 // external chain heads (global refs)
	bmask uint64
	slabs [][]mapping // fixed-length array, filled as the shard grows
	free  uint32      // free list head (local), linked through next[0]
	used  uint32      // slots handed out from slabs
	cap   uint32
	lhead uint32 // linger list (global refs), oldest first
	ltail uint32

	live               int
	tcp, udp, icmp     int
	other              int
	lingering          int
	created, freed     uint64
	exhausted, full    uint64
	refused, reclaimed uint64

	_ [64]byte
}

// New builds an empty table; slots are allocated as it fills.
func New(cfg Config) *Table {
	max := cfg.MaxMappings
	if max <= 0 {
		max = DefaultMaxMappings
	}
	if max > MaxMaxMappings {
		max = MaxMaxMappings
	}
	linger := cfg.Linger
	if linger == 0 {
		linger = DefaultLinger
	}
	if linger < 0 {
		linger = 0
	}
	n := 1
	for n < maxShards && max/(n*2) >= minShare {
		n *= 2
	}
	t := &Table{
		shards:    make([]shard, n),
		shardBits: uint(bits.TrailingZeros(uint(n))),
		shardMask: uint32(n - 1),
		seedIn:    rand.Uint64(),
		seedExt:   rand.Uint64(),
		linger:    int64(linger),
		max:       int64(max),
	}
	share := (max + n - 1) / n
	for i := range t.shards {
		s := &t.shards[i]
		c := share
		if n > 1 {
			c = share + share/2 // headroom for hash imbalance; the bound is count
		}
		s.cap = uint32(c)
		nb := 16 // two heads a mapping: chains average half an entry
		for nb < 2*share {
			nb *= 2
		}
		s.inB = make([]uint32, nb)
		s.extB = make([]uint32, nb)
		for j := range s.inB {
			s.inB[j] = nilRef
			s.extB[j] = nilRef
		}
		s.bmask = uint64(nb - 1)
		s.slabs = make([][]mapping, (c+slabSize-1)/slabSize)
		s.free, s.lhead, s.ltail = nilRef, nilRef, nilRef
	}
	return t
}

// MaxMappings is the table's bound.
func (t *Table) MaxMappings() int { return int(t.max) }

func mix(a, b, seed uint64) uint64 {
	hi, lo := bits.Mul64(a^seed, 0x9e3779b97f4a7c15)
	hi, lo = bits.Mul64(hi^lo^b, 0xc2b2ae3d27d4eb4f)
	return hi ^ lo
}

func be32(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

func epKey(proto uint8, e Endpoint) uint64 {
	return uint64(be32(e.Addr))<<32 | uint64(e.Port)<<8 | uint64(proto)
}

func (t *Table) hashIn(proto uint8, in Endpoint, dom [4]byte) uint64 {
	return mix(epKey(proto, in), uint64(be32(dom)), t.seedIn)
}

func (t *Table) hashExt(proto uint8, ext Endpoint) uint64 {
	return mix(epKey(proto, ext), 0, t.seedExt)
}

func (t *Table) shardOf(h uint64) uint32 { return uint32(h>>32) & t.shardMask }

func (s *shard) slot(local uint32) *mapping {
	return &s.slabs[local/slabSize][local%slabSize]
}

// entry resolves a global slot ref.
func (t *Table) entry(ref uint32) *mapping {
	return t.shards[ref&t.shardMask].slot(ref >> t.shardBits)
}

func (m *mapping) id() uint32 {
	return uint32(m.gen&genMask)<<idShift | (m.self + 1)
}

func decodeID(id uint32) (self uint32, gen uint8, ok bool) {
	low := id & (1<<idShift - 1)
	if low == 0 {
		return 0, 0, false
	}
	return low - 1, uint8(id >> idShift), true
}

// findIn walks the inside chain of s (owner shard, lock held).
func (t *Table) findIn(s *shard, h uint64, proto uint8, in Endpoint, dom [4]byte) *mapping {
	for ref := s.inB[h&s.bmask]; ref != nilRef; {
		m := t.entry(ref)
		if m.inside == in && m.proto == proto && m.dom == dom {
			return m
		}
		ref = m.next[0]
	}
	return nil
}

// findExt walks the external chain of s (lock held).
func (t *Table) findExt(s *shard, h uint64, proto uint8, ext Endpoint) *mapping {
	for ref := s.extB[h&s.bmask]; ref != nilRef; {
		m := t.entry(ref)
		if m.ext == ext && m.proto == proto {
			return m
		}
		ref = m.next[1]
	}
	return nil
}

func unlinkChain(t *Table, head *uint32, ref uint32, dir int) {
	p := head
	for *p != nilRef {
		if *p == ref {
			*p = t.entry(ref).next[dir]
			return
		}
		p = &t.entry(*p).next[dir]
	}
}

func (t *Table) lock2(a, b uint32) {
	if a == b {
		t.shards[a].mu.Lock()
		return
	}
	if b < a {
		a, b = b, a
	}
	t.shards[a].mu.Lock()
	t.shards[b].mu.Lock()
}

func (t *Table) unlock2(a, b uint32) {
	t.shards[a].mu.Unlock()
	if a != b {
		t.shards[b].mu.Unlock()
	}
}

// alloc hands out a free slot of s (lock held).
func (t *Table) alloc(s *shard, si uint32) *mapping {
	if s.free != nilRef {
		m := s.slot(s.free)
		s.free = m.next[0]
		return m
	}
	if s.used >= s.cap {
		return nil
	}
	if s.used%slabSize == 0 {
		k := s.used / slabSize
		s.slabs[k] = make([]mapping, min(slabSize, s.cap-s.used))
	}
	m := s.slot(s.used)
	m.self = s.used<<t.shardBits | si
	s.used++
	return m
}

// Linger list (owner shard lock held).

func (t *Table) lingerAppend(s *shard, m *mapping) {
	m.lnext = nilRef
	m.lprev = s.ltail
	if s.ltail != nilRef {
		t.entry(s.ltail).lnext = m.self
	} else {
		s.lhead = m.self
	}
	s.ltail = m.self
	s.lingering++
}

func (t *Table) lingerUnlink(s *shard, m *mapping) {
	if m.lprev != nilRef {
		t.entry(m.lprev).lnext = m.lnext
	} else {
		s.lhead = m.lnext
	}
	if m.lnext != nilRef {
		t.entry(m.lnext).lprev = m.lprev
	} else {
		s.ltail = m.lprev
	}
	m.lprev, m.lnext = nilRef, nilRef
	s.lingering--
}

// take adds a reference for a new session (owner lock held).
func (t *Table) take(s *shard, m *mapping, now int64) {
	if m.refs == 0 {
		t.lingerUnlink(s, m)
	}
	m.refs++
	m.last = now
}

// addRemote remembers r among the mapping's recent remotes: deduplicated
// by address under AddressDependent filtering (the port is refreshed), by
// address and port otherwise; the oldest is overwritten beyond MaxRemotes.
func (m *mapping) addRemote(r Endpoint) {
	for i := range int(m.nrem) {
		p := &m.remotes[i]
		if p.Addr == r.Addr && (p.Port == r.Port || m.filt == AddressDependent) {
			p.Port = r.Port
			return
		}
	}
	m.remotes[m.rhead] = r
	m.rhead = (m.rhead + 1) % MaxRemotes
	if m.nrem < MaxRemotes {
		m.nrem++
	}
}

func (m *mapping) allows(r Endpoint) bool {
	switch m.filt {
	case EndpointIndependent:
		return true
	case AddressDependent:
		for i := range int(m.nrem) {
			if m.remotes[i].Addr == r.Addr {
				return true
			}
		}
	default:
		for i := range int(m.nrem) {
			if m.remotes[i] == r {
				return true
			}
		}
	}
	return false
}

func supported(proto uint8) bool {
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoICMP:
		return true
	}
	return false
}

// Map returns the mapping of inside endpoint (proto, inside) through pool,
// creating it if none exists, and records remote among the mapping's recent
// remotes (up to MaxRemotes, the oldest forgotten first) for
// AddressDependent and AddressPortDependent filtering. The same inside
// endpoint gets the same external endpoint for as long as the mapping lives,
// whatever remote it sends to (endpoint-independent mapping). Map takes one
// reference for the caller's session; id (never 0) identifies the mapping
// for Release. now is nanoseconds on any monotonic clock.
//
// A new mapping keeps the inside port when it is free on one of the pool's
// addresses (the address picked by a hash of the inside address first, so
// one host's mappings tend to share an external address), otherwise takes
// a random port of the same class (1-1023 or 1024-65535, intersected with
// the pool's ports when that leaves any) and the same parity: 64 random
// probes, then a linear scan of up to 4096 consecutive endpoints from a
// random start. ErrPoolExhausted is therefore certain for pools of up to
// 4096 endpoints and means "nearly full" for larger ones. ICMP identifiers
// have no class: any value in the pool's port range, or 0-65535.
//
// Map allocates nothing when the mapping exists (nor, once the slab is
// there, when it creates one).
func (t *Table) Map(proto uint8, inside, remote Endpoint, pool *Pool, now int64) (ext Endpoint, id uint32, err error) {
	if !supported(proto) {
		return Endpoint{}, 0, ErrProtocol
	}
	if pool == nil || be32(pool.Lo) > be32(pool.Hi) || pool.PortLo > pool.PortHi {
		return Endpoint{}, 0, ErrBadPool
	}
	hi := t.hashIn(proto, inside, pool.Lo)
	oi := t.shardOf(hi)
	so := &t.shards[oi]
	so.mu.Lock()
	if m := t.findIn(so, hi, proto, inside, pool.Lo); m != nil {
		t.take(so, m, now)
		m.addRemote(remote)
		ext, id = m.ext, m.id()
		so.mu.Unlock()
		return ext, id, nil
	}
	so.mu.Unlock()
	return t.create(proto, inside, remote, pool, now, hi, oi)
}

func (t *Table) create(proto uint8, inside, remote Endpoint, pool *Pool, now int64, hi uint64, oi uint32) (Endpoint, uint32, error) {
	so := &t.shards[oi]
	if !t.reserve() && !(t.reclaim(oi, now) && t.reserve()) {
		so.mu.Lock()
		so.full++
		so.mu.Unlock()
		return Endpoint{}, 0, ErrTableFull
	}
	var p prober
	p.init(proto, inside, pool)
	for {
		ext, ok := p.next()
		if !ok {
			break
		}
		he := t.hashExt(proto, ext)
		ei := t.shardOf(he)
		se := &t.shards[ei]
		t.lock2(oi, ei)
		if m := t.findIn(so, hi, proto, inside, pool.Lo); m != nil {
			// Another worker created it meanwhile.
			t.take(so, m, now)
			m.addRemote(remote)
			e, id := m.ext, m.id()
			t.unlock2(oi, ei)
			t.count.Add(-1)
			return e, id, nil
		}
		if t.findExt(se, he, proto, ext) != nil {
			t.unlock2(oi, ei)
			continue
		}
		m := t.alloc(so, oi)
		if m == nil {
			so.full++
			t.unlock2(oi, ei)
			t.count.Add(-1)
			return Endpoint{}, 0, ErrTableFull
		}
		m.inside, m.ext, m.dom, m.proto, m.filt = inside, ext, pool.Lo, proto, pool.Filtering
		m.live = true
		m.refs = 1
		m.last = now
		m.nrem, m.rhead = 0, 0
		m.lprev, m.lnext = nilRef, nilRef
		m.addRemote(remote)
		m.next[0] = so.inB[hi&so.bmask]
		so.inB[hi&so.bmask] = m.self
		m.next[1] = se.extB[he&se.bmask]
		se.extB[he&se.bmask] = m.self
		so.live++
		so.created++
		*so.protoCount(proto)++
		id := m.id()
		t.unlock2(oi, ei)
		return ext, id, nil
	}
	t.count.Add(-1)
	so.mu.Lock()
	so.exhausted++
	so.mu.Unlock()
	return Endpoint{}, 0, ErrPoolExhausted
}

// reserve counts one more mapping against the bound.
func (t *Table) reserve() bool {
	if t.count.Add(1) > t.max {
		t.count.Add(-1)
		return false
	}
	return true
}

func (s *shard) protoCount(proto uint8) *int {
	switch proto {
	case ProtoTCP:
		return &s.tcp
	case ProtoUDP, ProtoUDPLite:
		return &s.udp
	case ProtoICMP:
		return &s.icmp
	}
	return &s.other
}

// reclaim frees the oldest lingering mapping of shard si to make room; it
// reports whether it freed one.
func (t *Table) reclaim(si uint32, now int64) bool {
	s := &t.shards[si]
	s.mu.Lock()
	if s.lhead == nilRef {
		s.mu.Unlock()
		return false
	}
	m := t.entry(s.lhead)
	self, gen := m.self, m.gen
	s.mu.Unlock()
	if t.remove(self, gen, removeIdle, now) {
		s.mu.Lock()
		s.reclaimed++
		s.mu.Unlock()
		return true
	}
	return false
}

// Inbound looks up the mapping owning external endpoint ext for protocol
// proto and applies its filtering to remote: ok is false when there is none
// or filtering refuses (counted in Stats.Refused). On ok it takes a
// reference for the session the caller creates (Release it when the session
// ends). The remote is not recorded. It allocates nothing.
func (t *Table) Inbound(proto uint8, ext, remote Endpoint, now int64) (inside Endpoint, id uint32, ok bool) {
	he := t.hashExt(proto, ext)
	ei := t.shardOf(he)
	se := &t.shards[ei]
	se.mu.Lock()
	m := t.findExt(se, he, proto, ext)
	if m == nil {
		se.mu.Unlock()
		return Endpoint{}, 0, false
	}
	self, gen := m.self, m.gen
	oi := self & t.shardMask
	so := se
	if oi != ei {
		// The mapping's mutable state is the owner's: switch locks and
		// check the slot still holds the same mapping.
		se.mu.Unlock()
		so = &t.shards[oi]
		so.mu.Lock()
		if !m.live || m.gen != gen {
			so.mu.Unlock()
			return Endpoint{}, 0, false
		}
	}
	if !m.allows(remote) {
		so.refused++
		so.mu.Unlock()
		return Endpoint{}, 0, false
	}
	t.take(so, m, now)
	inside, id = m.inside, m.id()
	so.mu.Unlock()
	return inside, id, true
}

// Release drops one reference (a session ended: the connection table freed
// its entry). At zero references the mapping lingers Config.Linger, then
// Expire frees it (or Map reclaims it when the table is full). An id that
// no longer names a live mapping (after Flush) is ignored.
func (t *Table) Release(id uint32, now int64) {
	self, gen, ok := decodeID(id)
	if !ok {
		return
	}
	si := self & t.shardMask
	if int(si) >= len(t.shards) {
		return
	}
	s := &t.shards[si]
	local := self >> t.shardBits
	s.mu.Lock()
	if local >= s.used {
		s.mu.Unlock()
		return
	}
	m := s.slot(local)
	if !m.live || m.gen&genMask != gen || m.refs <= 0 {
		s.mu.Unlock()
		return
	}
	m.refs--
	if m.refs == 0 {
		m.last = now
		t.lingerAppend(s, m)
	}
	s.mu.Unlock()
}

type removeCond uint8

const (
	removeIdle  removeCond = iota // only with no references
	removeForce                   // whatever its references (Flush)
)

// remove frees the mapping in slot self if it still carries generation
// gen (and, for removeIdle, has no references). It takes the owner's and
// the external endpoint's shard locks in index order.
func (t *Table) remove(self uint32, gen uint8, cond removeCond, now int64) bool {
	oi := self & t.shardMask
	so := &t.shards[oi]
	m := so.slot(self >> t.shardBits)
	ok := func() bool { return m.live && m.gen == gen && (cond == removeForce || m.refs == 0) }
	so.mu.Lock()
	if !ok() {
		so.mu.Unlock()
		return false
	}
	he := t.hashExt(m.proto, m.ext)
	ei := t.shardOf(he)
	if ei > oi {
		t.shards[ei].mu.Lock()
	} else if ei < oi {
		so.mu.Unlock()
		t.lock2(oi, ei)
		if !ok() {
			t.unlock2(oi, ei)
			return false
		}
	}
	se := &t.shards[ei]
	hi := t.hashIn(m.proto, m.inside, m.dom)
	unlinkChain(t, &so.inB[hi&so.bmask], m.self, 0)
	unlinkChain(t, &se.extB[he&se.bmask], m.self, 1)
	if m.refs == 0 {
		t.lingerUnlink(so, m)
	}
	m.live = false
	m.gen++
	m.refs = 0
	m.next[1] = nilRef
	m.next[0] = so.free
	so.free = m.self >> t.shardBits
	so.live--
	so.freed++
	*so.protoCount(m.proto)--
	t.unlock2(oi, ei)
	t.count.Add(-1)
	return true
}

// AddStatic creates a fixed mapping of inside to ext (a port forward, or a
// static SNAT binding), endpoint-independent in both directions: Inbound
// lets any remote in, and Map of inside through a pool whose Lo is ext.Addr
// (the masquerade of that address) finds it, so the inside server's own
// outbound connections from that port leave from ext as well. The caller
// (the configuration) holds the returned reference; Release(id) when the
// forward is removed lets the mapping linger and expire once its sessions
// end. It fails with ErrInUse when inside (in that domain) or ext already
// has a mapping, ErrTableFull, or ErrProtocol.
func (t *Table) AddStatic(proto uint8, inside, ext Endpoint, now int64) (id uint32, err error) {
	if !supported(proto) {
		return 0, ErrProtocol
	}
	if !t.reserve() {
		return 0, ErrTableFull
	}
	hi, he := t.hashIn(proto, inside, ext.Addr), t.hashExt(proto, ext)
	oi, ei := t.shardOf(hi), t.shardOf(he)
	so, se := &t.shards[oi], &t.shards[ei]
	t.lock2(oi, ei)
	defer t.unlock2(oi, ei)
	if t.findIn(so, hi, proto, inside, ext.Addr) != nil || t.findExt(se, he, proto, ext) != nil {
		t.count.Add(-1)
		return 0, ErrInUse
	}
	m := t.alloc(so, oi)
	if m == nil {
		so.full++
		t.count.Add(-1)
		return 0, ErrTableFull
	}
	m.inside, m.ext, m.dom, m.proto, m.filt = inside, ext, ext.Addr, proto, EndpointIndependent
	m.live = true
	m.refs = 1
	m.last = now
	m.nrem, m.rhead = 0, 0
	m.lprev, m.lnext = nilRef, nilRef
	m.next[0] = so.inB[hi&so.bmask]
	so.inB[hi&so.bmask] = m.self
	m.next[1] = se.extB[he&se.bmask]
	se.extB[he&se.bmask] = m.self
	so.live++
	so.created++
	*so.protoCount(proto)++
	return m.id(), nil
}
