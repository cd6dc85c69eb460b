// Package neigh is ferry's neighbour table, for ARP (IPv4) and Neighbor
// Discovery (IPv6) alike: the states and timers
// of Linux's neighbour subsystem (net/core/neighbour.c) as pure logic. It
// does no I/O and keeps no goroutine: callers pass the time in, and the
// control goroutine calls Tick and carries out the Actions it returns.
//
// Workers look entries up on every packet, so reads are lock-free: Lookup
// loads an immutable map snapshot through an atomic pointer, and an Entry's
// state and MAC are atomics. Writers (resolution, replies, timers) take a
// mutex and copy the map only when an entry is added or removed, which is
// rare next to lookups.
package neigh

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Key names a neighbour: the ferry port it is reached through and its
// address, IPv4 in IP (host byte order) or IPv6 in IP6 with IP zero. A
// plain comparable struct keeps lookups allocation-free; the IPv6 form
// costs IPv4 keys 16 zero bytes of hashing.
type Key struct {
	Port int
	IP   uint32
	IP6  [16]byte
}

// V6 reports whether k names an IPv6 neighbour.
func (k Key) V6() bool { return k.IP6 != [16]byte{} }

// Addr returns k's address.
func (k Key) Addr() netip.Addr {
	if k.V6() {
		return netip.AddrFrom16(k.IP6)
	}
	return netip.AddrFrom4([4]byte{byte(k.IP >> 24), byte(k.IP >> 16), byte(k.IP >> 8), byte(k.IP)})
}

// State is a neighbour's NUD state.
type State uint32

const (
	Incomplete State = iota + 1 // resolving: broadcast requests outstanding
	Reachable                   // confirmed recently
	Stale                       // usable, unconfirmed; the next use starts a check
	Delay                       // used while stale; probe if nothing confirms it soon
	Probe                       // unicast probes outstanding
	Failed                      // resolution failed; packets get host unreachable
	Permanent                   // static, from the config
)

var stateNames = [...]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Config holds the timers, with Linux's defaults when zero.
type Config struct {
	ReachableTime   time.Duration // base_reachable_time, randomised to 0.5..1.5x (30 s)
	RetransTime     time.Duration // between requests or probes (1 s)
	DelayFirstProbe time.Duration // delay_first_probe_time (5 s)
	McastSolicit    int           // broadcast requests before failing (3)
	UcastSolicit    int           // unicast probes before failing (3)
	QueueLen        int           // packets held per unresolved neighbour (3)
	GCStaleTime     time.Duration // unused stale or failed entries are removed after (60 s)
	MaxEntries      int           // table size bound (gc_thresh3: 1024)
	Rand            func() float64
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReachableTime, 30*time.Second)
	def(&c.RetransTime, time.Second)
	def(&c.DelayFirstProbe, 5*time.Second)
	def(&c.GCStaleTime, 60*time.Second)
	if c.McastSolicit == 0 {
		c.McastSolicit = 3
	}
	if c.UcastSolicit == 0 {
		c.UcastSolicit = 3
	}
	if c.QueueLen == 0 {
		c.QueueLen = 3
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = 1024
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// Entry is one neighbour. Workers read it without locks; the rest of it
// belongs to the Table's mutex.
type Entry struct {
	key   Key
	state atomic.Uint32
	mac   atomic.Uint64 // 48-bit MAC
	used  atomic.Bool   // a worker sent through it while STALE

	// guarded by Table.mu
	deadline time.Time // next timer event for the current state
	probes   int
	updated  time.Time // last state change or use, for garbage collection
	queue    [][]byte
}

// State is the entry's current state.
func (e *Entry) State() State { return State(e.state.Load()) }

// MAC returns the neighbour's address and whether packets may be sent to it
// now (every state but INCOMPLETE and FAILED).
func (e *Entry) MAC() ([6]byte, bool) {
	switch State(e.state.Load()) {
	case Reachable, Stale, Delay, Probe, Permanent:
		return unpack(e.mac.Load()), true
	}
	return [6]byte{}, false
}

// Touch records that a worker used the entry. Only a STALE entry cares
// (it moves to DELAY on the next Tick), so other states cost one load and
// no write to the shared cache line.
func (e *Entry) Touch() {
	if State(e.state.Load()) == Stale && !e.used.Load() {
		e.used.Store(true)
	}
}

func pack(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func unpack(v uint64) [6]byte {
	return [6]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// Table is the neighbour table.
type Table struct {
	cfg  Config
	snap atomic.Pointer[map[Key]*Entry]
	mu   sync.Mutex
}

// New returns an empty table.
func New(cfg Config) *Table {
	cfg.defaults()
	t := &Table{cfg: cfg}
	m := map[Key]*Entry{}
	t.snap.Store(&m)
	return t
}

// Lookup returns the entry for k, or nil. Lock-free and allocation-free.
func (t *Table) Lookup(k Key) *Entry { return (*t.snap.Load())[k] }

// Cache is one worker's memory of its last lookup. A router sends most
// packets to a few next hops (its gateways), so consecutive packets mostly
// share one; comparing a 32-byte key costs less than hashing it. The cache
// is exact: it is used only while the table's map is the one it was filled
// from, and entries change state in place.
type Cache struct {
	m *map[Key]*Entry
	k Key
	e *Entry
}

// LookupCached is Lookup through c, which belongs to one goroutine.
func (t *Table) LookupCached(c *Cache, k Key) *Entry {
	m := t.snap.Load()
	if m == c.m && k == c.k {
		return c.e
	}
	e := (*m)[k]
	c.m, c.k, c.e = m, k, e
	return e
}

// insert and remove copy the map: readers keep the snapshot they loaded.
func (t *Table) insert(e *Entry) {
	old := *t.snap.Load()
	m := make(map[Key]*Entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[e.key] = e
	t.snap.Store(&m)
}

func (t *Table) remove(keys []Key) {
	old := *t.snap.Load()
	m := make(map[Key]*Entry, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, k := range keys {
		delete(m, k)
	}
	t.snap.Store(&m)
}

func (t *Table) set(e *Entry, s State, now time.Time) {
	e.state.Store(uint32(s))
	e.updated = now
	e.probes = 0
	switch s {
	case Reachable:
		r := t.cfg.ReachableTime
		e.deadline = now.Add(time.Duration(float64(r) * (0.5 + t.cfg.Rand())))
	case Incomplete, Probe:
		e.deadline = now.Add(t.cfg.RetransTime)
	case Delay:
		e.deadline = now.Add(t.cfg.DelayFirstProbe)
	case Failed:
		// A failed neighbour is retried on demand after one retransmit
		// interval, so a host that comes back is found again.
		e.deadline = now.Add(t.cfg.RetransTime)
	default:
		e.deadline = time.Time{}
	}
}

// ErrFull is returned when the table holds MaxEntries neighbours.
var ErrFull = errors.New("neighbour table full")

// Resolve is the slow path for a packet whose next hop has no usable
// entry. It creates an INCOMPLETE entry if needed (or restarts a FAILED one
// whose hold time is over), copies frame into the entry's queue, and says
// whether the caller must broadcast an ARP request now. dropped reports
// that a frame was pushed out: the oldest when the queue was full, or this
// one when the neighbour is FAILED and still held down, or the table full.
func (t *Table) Resolve(k Key, now time.Time, frame []byte) (e *Entry, sendRequest, dropped bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e = t.Lookup(k)
	if e == nil {
		if len(*t.snap.Load()) >= t.cfg.MaxEntries {
			return nil, false, true
		}
		e = &Entry{key: k}
		t.set(e, Incomplete, now)
		t.insert(e)
		sendRequest = true
	} else {
		switch e.State() {
		case Failed:
			if now.Before(e.deadline) {
				return e, false, true
			}
			t.set(e, Incomplete, now)
			sendRequest = true
		case Incomplete:
		default:
			// Usable by now (a reply raced the caller's lookup): nothing to
			// queue for, but the caller has already let go of the packet,
			// so send it through the queue path all the same.
			return e, false, false
		}
	}
	if len(e.queue) >= t.cfg.QueueLen {
		e.queue = e.queue[1:]
		dropped = true
	}
	e.queue = append(e.queue, append([]byte(nil), frame...))
	return e, sendRequest, dropped
}

// Confirm records an ARP packet from the neighbour with address mac.
// solicited is true for a reply to ferry's request: the entry becomes
// REACHABLE. Otherwise (a request to ferry, a gratuitous ARP) the entry is
// created or updated as STALE, as Linux's neigh_event_ns does, keeping a
// REACHABLE entry reachable when the MAC is unchanged. PERMANENT entries
// never change. Confirm returns the frames that waited for the address.
func (t *Table) Confirm(k Key, mac [6]byte, now time.Time, solicited bool) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.Lookup(k)
	if e == nil {
		if len(*t.snap.Load()) >= t.cfg.MaxEntries {
			return nil
		}
		e = &Entry{key: k}
		e.mac.Store(pack(mac))
		if solicited {
			t.set(e, Reachable, now)
		} else {
			t.set(e, Stale, now)
		}
		t.insert(e)
		return nil
	}
	st := e.State()
	if st == Permanent {
		return nil
	}
	changed := e.mac.Load() != pack(mac)
	e.mac.Store(pack(mac))
	switch {
	case solicited:
		t.set(e, Reachable, now)
	case st == Incomplete || st == Failed || changed:
		t.set(e, Stale, now)
	}
	e.used.Store(false)
	q := e.queue
	e.queue = nil
	return q
}

// AddStatic installs a PERMANENT entry.
func (t *Table) AddStatic(k Key, mac [6]byte) error {
	if mac[0]&1 != 0 || mac == [6]byte{} {
		return errors.New("neighbour MAC must be a unicast address")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.Lookup(k)
	if e == nil {
		e = &Entry{key: k}
		defer t.insert(e)
	}
	e.mac.Store(pack(mac))
	t.set(e, Permanent, time.Time{})
	e.queue = nil
	return nil
}

// Delete removes k's entry; it reports whether there was one.
func (t *Table) Delete(k Key) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Lookup(k) == nil {
		return false
	}
	t.remove([]Key{k})
	return true
}

// ActionKind says what the caller of Tick must do.
type ActionKind uint8

const (
	SendBroadcastRequest ActionKind = iota + 1 // who-has to ff:ff:ff:ff:ff:ff (IPv6: NS to the solicited-node group)
	SendUnicastProbe                           // who-has (IPv6: NS) to the last known MAC
	ResolveFailed                              // resolution failed: answer Frames with host unreachable
)

// Action is one thing Tick asks the caller to do.
type Action struct {
	Key    Key
	Kind   ActionKind
	MAC    [6]byte  // for SendUnicastProbe
	Frames [][]byte // for ResolveFailed: the frames that waited
}

// Tick runs the timers up to now.
func (t *Table) Tick(now time.Time) []Action {
	t.mu.Lock()
	defer t.mu.Unlock()
	var acts []Action
	var gone []Key
	for k, e := range *t.snap.Load() {
		st := e.State()
		if st == Stale && e.used.Load() {
			e.used.Store(false)
			t.set(e, Delay, now)
			continue
		}
		if st == Permanent || e.deadline.IsZero() || now.Before(e.deadline) {
			if (st == Stale || st == Failed) && now.Sub(e.updated) > t.cfg.GCStaleTime {
				gone = append(gone, k)
			}
			continue
		}
		switch st {
		case Incomplete:
			e.probes++
			if e.probes >= t.cfg.McastSolicit {
				acts = append(acts, Action{Key: k, Kind: ResolveFailed, Frames: e.queue})
				e.queue = nil
				t.set(e, Failed, now)
				continue
			}
			e.deadline = now.Add(t.cfg.RetransTime)
			acts = append(acts, Action{Key: k, Kind: SendBroadcastRequest})
		case Reachable:
			t.set(e, Stale, now)
		case Delay:
			t.set(e, Probe, now)
			acts = append(acts, Action{Key: k, Kind: SendUnicastProbe, MAC: unpack(e.mac.Load())})
		case Probe:
			e.probes++
			if e.probes >= t.cfg.UcastSolicit {
				t.set(e, Failed, now)
				continue
			}
			e.deadline = now.Add(t.cfg.RetransTime)
			acts = append(acts, Action{Key: k, Kind: SendUnicastProbe, MAC: unpack(e.mac.Load())})
		case Failed:
			e.deadline = time.Time{} // hold over: the next packet restarts resolution
		}
	}
	if len(gone) > 0 {
		t.remove(gone)
	}
	return acts
}

// Status is one row of the table for display.
type Status struct {
	Key    Key
	MAC    [6]byte
	HasMAC bool
	State  State
	Queued int
}

// Snapshot lists the table sorted by port and address.
func (t *Table) Snapshot() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Status
	for k, e := range *t.snap.Load() {
		st := e.State()
		out = append(out, Status{Key: k, MAC: unpack(e.mac.Load()), HasMAC: st != Incomplete && st != Failed, State: st, Queued: len(e.queue)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.Port != out[j].Key.Port {
			return out[i].Key.Port < out[j].Key.Port
		}
		return out[i].Key.Addr().Less(out[j].Key.Addr())
	})
	return out
}
