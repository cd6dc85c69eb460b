package conntrack

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Errors Confirm returns. The packet that carried the new flow should be
// dropped and counted.
var (
	// ErrFull: the shard the flow hashes to is at its share of Capacity
	// and holds no unreplied entry to drop early.
	ErrFull = errors.New("conntrack: table full")
	// ErrReplyTaken: another flow already owns the (NAT-rewritten) reply
	// tuple; NAT's port choice should have avoided it.
	ErrReplyTaken = errors.New("conntrack: reply tuple in use")
)

const (
	maxShards = 256
	// slabSize entries are allocated at once when a shard grows: large
	// enough that growth is rare, small enough that an idle table with a
	// large capacity costs little.
	slabSize = 1024
	nilRef   = ^uint32(0)
	// earlyDropScan bounds the slots Confirm inspects for a victim when
	// the shard is full (Linux scans a few buckets the same way).
	earlyDropScan = 64
	// maxAttempts bounds the retries of Track and Confirm when an entry
	// vanishes or is evicted under them.
	maxAttempts = 4
)

// Table is the connection table: shared by all workers, sharded by tuple
// hash so that no lock is global. Each shard owns a slice of the capacity
// (its slots), a hash chain array (its buckets) and a mutex. A tuple hashes
// to one shard; an entry's Orig tuple decides the shard that owns its slot,
// its Reply tuple may be chained in another. See the package doc.
type Table struct {
	shards    []shard
	shardBits uint
	shardMask uint32
	seed      uint64
	timeouts  timeoutsNS
	loose     bool
	liberal   bool
	capacity  int
	onRemove  func(nat uint32)

	expireMu  sync.Mutex // serialises Expire's cursor (control path only)
	expShard  int
	expSlot   uint32
	flushing  atomic.Bool
	invalidNS atomic.Uint64 // invalid packets with no entry to charge a shard for
}

type shard struct {
	mu      sync.Mutex
	buckets []uint32 // chain heads: refs (slot<<1 | dir)
	bmask   uint64
	slabs   [][]Conn // fixed-length array of slabs, filled as the shard grows
	free    uint32   // free list head (local slot), linked through next[0]
	used    uint32   // slots handed out from slabs so far
	count   int      // live and reserved entries
	cap     int
	cursor  uint32 // early-drop scan position

	inserts, earlyDrops, clashes, full, expired, taken uint64
	invalid                                            atomic.Uint64

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// New builds an empty table; entries are allocated as it fills.
func New(cfg Config) *Table {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.Capacity > 1<<30 {
		cfg.Capacity = 1 << 30
	}
	cfg.Timeouts.fill()
	// A shard's share stays at 256 slots or more so that early drop has
	// victims to choose from; up to 256 shards keep lock contention low.
	n := 1
	for n < maxShards && cfg.Capacity/(n*2) >= 256 {
		n *= 2
	}
	t := &Table{
		shards:    make([]shard, n),
		shardBits: uint(bits.TrailingZeros(uint(n))),
		shardMask: uint32(n - 1),
		seed:      rand.Uint64(),
		timeouts:  cfg.Timeouts.ns(),
		loose:     cfg.TCPLoose,
		liberal:   cfg.TCPBeLiberal,
		onRemove:  cfg.OnRemove,
		capacity:  cfg.Capacity,
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.cap = cfg.Capacity / n
		if i < cfg.Capacity%n {
			s.cap++
		}
		// Two tuples an entry, one bucket a tuple on average.
		nb := 16
		for nb < 2*s.cap {
			nb *= 2
		}
		s.buckets = make([]uint32, nb)
		for j := range s.buckets {
			s.buckets[j] = nilRef
		}
		s.bmask = uint64(nb - 1)
		s.slabs = make([][]Conn, (s.cap+slabSize-1)/slabSize)
		s.free = nilRef
	}
	return t
}

// Capacity is the most entries the table holds.
func (t *Table) Capacity() int { return t.capacity }

func (t *Table) shardOf(h uint64) int { return int(h>>32) & int(t.shardMask) }

// slot finds a shard's slot by its local index.
func (s *shard) slot(local uint32) *Conn {
	return &s.slabs[local/slabSize][local%slabSize]
}

// conn resolves a chain ref to its entry and direction.
func (t *Table) conn(ref uint32) (*Conn, Dir) {
	self := ref >> 1
	s := &t.shards[self&t.shardMask]
	return s.slot(self >> t.shardBits), Dir(ref & 1)
}

// find walks the chain for tuple k in s, whose lock the caller holds.
func (t *Table) find(s *shard, h uint64, k *Tuple) (*Conn, Dir) {
	for ref := s.buckets[h&s.bmask]; ref != nilRef; {
		c, d := t.conn(ref)
		if equal(c.tuple(d), k) {
			return c, d
		}
		ref = c.next[d]
	}
	return nil, 0
}

// unlink takes ref out of its chain in s (lock held).
func (t *Table) unlink(s *shard, h uint64, ref uint32) {
	p := &s.buckets[h&s.bmask]
	for *p != nilRef {
		if *p == ref {
			c, d := t.conn(ref)
			*p = c.next[d]
			return
		}
		c, d := t.conn(*p)
		p = &c.next[d]
	}
}

// lock2 locks shards a and b in index order (once if equal).
func (t *Table) lock2(a, b int) {
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

func (t *Table) unlock2(a, b int) {
	t.shards[a].mu.Unlock()
	if a != b {
		t.shards[b].mu.Unlock()
	}
}

// alloc hands out a free slot of s (lock held); false when none is left.
func (t *Table) alloc(s *shard, si int) (*Conn, bool) {
	if s.count >= s.cap {
		return nil, false
	}
	var c *Conn
	if s.free != nilRef {
		c = s.slot(s.free)
		s.free = c.next[0]
	} else {
		if s.used%slabSize == 0 {
			// The first slot of a new slab: size it to what the share
			// still allows, so a full table wastes no slots.
			k := s.used / slabSize
			n := min(slabSize, s.cap-int(s.used))
			slab := make([]Conn, n)
			for i := range slab {
				slab[i].self = (s.used+uint32(i))<<t.shardBits | uint32(si)
			}
			s.slabs[k] = slab
		}
		c = s.slot(s.used)
		s.used++
	}
	s.count++
	return c, true
}

// lookup finds tuple k and returns its entry locked (mu held), with the
// direction k has in it; nil when absent.
func (t *Table) lookup(k *Tuple) (*Conn, Dir) {
	h := hash(k, t.seed)
	s := &t.shards[t.shardOf(h)]
	s.mu.Lock()
	c, d := t.find(s, h, k)
	if c != nil {
		c.mu.Lock()
	}
	s.mu.Unlock()
	return c, d
}

// Confirm inserts the unconfirmed Conn that Track returned with state New
// (the caller's scratch), indexed by c.Orig and by c.Reply as they are now,
// and returns the table's entry. If another worker confirmed the same flow
// first (from either direction), it returns that entry and counts a clash.
// An entry that Confirm returns is never c itself, so the scratch may be
// reused at once. Passing an entry that is already confirmed returns it.
func (t *Table) Confirm(c *Conn, now int64) (*Conn, error) {
	if !c.pending {
		return c, nil
	}
	ho, hr := hash(&c.Orig, t.seed), hash(&c.Reply, t.seed)
	oi, ri := t.shardOf(ho), t.shardOf(hr)
	so, sr := &t.shards[oi], &t.shards[ri]
	for range maxAttempts {
		t.lock2(oi, ri)
		e, d := t.find(so, ho, &c.Orig)
		if e == nil {
			if e, _ = t.find(sr, hr, &c.Reply); e != nil && e.deadline.Load() > now {
				sr.taken++
				t.unlock2(oi, ri)
				return nil, ErrReplyTaken
			}
		}
		if e != nil {
			if e.deadline.Load() > now {
				so.clashes++
				e.mu.Lock()
				e.absorb(c, d, now, t)
				e.mu.Unlock()
				t.unlock2(oi, ri)
				return e, nil
			}
			// An expired entry holds the tuple: free it and retry.
			self, gen := e.self, e.gen
			t.unlock2(oi, ri)
			t.remove(self, gen, reasonExpired)
			continue
		}
		e, ok := t.alloc(so, oi)
		if !ok {
			self, gen, found := t.victim(so)
			t.unlock2(oi, ri)
			if !found {
				so.mu.Lock()
				so.full++
				so.mu.Unlock()
				return nil, ErrFull
			}
			t.remove(self, gen, reasonEarlyDrop)
			continue
		}
		e.connData = c.connData
		e.pending = false
		e.deadline.Store(c.deadline.Load())
		e.live = true
		ref := (e.self << 1)
		e.next[0] = so.buckets[ho&so.bmask]
		so.buckets[ho&so.bmask] = ref
		e.next[1] = sr.buckets[hr&sr.bmask]
		sr.buckets[hr&sr.bmask] = ref | 1
		so.inserts++
		t.unlock2(oi, ri)
		return e, nil
	}
	so.mu.Lock()
	so.full++
	so.mu.Unlock()
	return nil, ErrFull
}

// victim picks an entry of s (lock held) that early drop may evict: one
// that has seen no reply. An entry that was answered is never dropped
// early, so established flows survive a flood of new ones.
func (t *Table) victim(s *shard) (self, gen uint32, ok bool) {
	if s.used == 0 {
		return 0, 0, false
	}
	for range min(earlyDropScan, int(s.used)) {
		if s.cursor >= s.used {
			s.cursor = 0
		}
		c := s.slot(s.cursor)
		s.cursor++
		if !c.live {
			continue
		}
		c.mu.Lock()
		drop := c.status&(stSeenReply|stAssured) == 0
		gen := c.gen
		c.mu.Unlock()
		if drop {
			return c.self, gen, true
		}
	}
	return 0, 0, false
}

type removeReason uint8

const (
	reasonExpired removeReason = iota
	reasonEarlyDrop
	reasonFlush
	reasonKilled
)

// remove frees the entry in slot self if it still carries generation gen.
// It takes the locks of both chains the entry is in, in index order.
func (t *Table) remove(self, gen uint32, why removeReason) bool {
	oi := int(self & t.shardMask)
	so := &t.shards[oi]
	c := so.slot(self >> t.shardBits)
	so.mu.Lock()
	if !c.live || c.gen != gen {
		so.mu.Unlock()
		return false
	}
	// Orig and Reply are fixed while the slot is live, and written only
	// under the owner's lock, which is held.
	ho, hr := hash(&c.Orig, t.seed), hash(&c.Reply, t.seed)
	ri := t.shardOf(hr)
	if ri > oi {
		t.shards[ri].mu.Lock()
	} else if ri < oi {
		// Lock order is by index: let go, take both, check again.
		so.mu.Unlock()
		t.lock2(oi, ri)
		if !c.live || c.gen != gen {
			t.unlock2(oi, ri)
			return false
		}
	}
	sr := &t.shards[ri]
	t.unlink(so, ho, c.self<<1)
	t.unlink(sr, hr, c.self<<1|1)
	natID := c.NAT
	c.mu.Lock()
	c.gen++
	c.live = false
	c.mu.Unlock()
	c.next[0] = so.free
	c.next[1] = nilRef
	so.free = c.self >> t.shardBits
	so.count--
	switch why {
	case reasonExpired:
		so.expired++
	case reasonEarlyDrop:
		so.earlyDrops++
	}
	t.unlock2(oi, ri)
	if natID != 0 && t.onRemove != nil {
		t.onRemove(natID)
	}
	return true
}

// absorb applies to the winning entry e (mu held) the first packet of the
// scratch c that lost the race to insert the same flow: seen from e it
// travelled in direction d. When both ends opened at once (a UDP or TCP
// hole punch), that packet is e's first reply and must count as one. A
// caller needing the exact per-packet result may Track the packet again.
func (e *Conn) absorb(c *Conn, d Dir, now int64, t *Table) {
	e.pkts[d]++
	if d != Reply || e.status&stSeenReply != 0 {
		return
	}
	switch e.Orig.Proto {
	case ProtoTCP:
		if e.state != tcpSynSent || c.state != tcpSynSent {
			return // only a SYN meeting a SYN is understood here
		}
		// Simultaneous open: the loser's SYN is the reply side's SYN.
		e.tcp.seen[Reply] = c.tcp.seen[Original]
		if e.tcp.seen[Original].flags&e.tcp.seen[Reply].flags&sideWScale == 0 {
			e.tcp.seen[Original].scale, e.tcp.seen[Reply].scale = 0, 0
		}
		e.state = tcpSynSent2
	case ProtoUDP, ProtoUDPLite:
		t.udpPacket(e, d, now)
	}
	e.status |= stSeenReply
}
