package nat

import "time"

// expireBatch bounds the victims collected under one shard lock.
const expireBatch = 64

// Expire frees up to budget lingering mappings whose time is up (no
// references for Config.Linger). Each shard keeps its lingering mappings in
// a list in Release order, so Expire only looks at list heads: it never
// sweeps the table, and visits each shard at most once a call, resuming
// where the last call stopped. It returns how many it freed. Meant to run
// about ten times a second from one control goroutine (a second caller
// waits).
func (t *Table) Expire(now int64, budget int) int {
	t.expMu.Lock()
	defer t.expMu.Unlock()
	freed := 0
	var victims [expireBatch]struct {
		self uint32
		gen  uint8
	}
	for visited := 0; visited < len(t.shards) && freed < budget; visited++ {
		s := &t.shards[t.expShard]
		for freed < budget {
			n := 0
			s.mu.Lock()
			for ref := s.lhead; ref != nilRef && n < min(expireBatch, budget-freed); {
				m := t.entry(ref)
				if m.last+t.linger > now {
					break
				}
				victims[n].self, victims[n].gen = m.self, m.gen
				n++
				ref = m.lnext
			}
			s.mu.Unlock()
			for _, v := range victims[:n] {
				if t.removeExpired(v.self, v.gen, now) {
					freed++
				}
			}
			if n < expireBatch {
				break
			}
		}
		if freed < budget {
			t.expShard = (t.expShard + 1) % len(t.shards)
		}
	}
	return freed
}

// removeExpired frees a lingering mapping whose time is up; a mapping
// referenced again meanwhile is left alone.
func (t *Table) removeExpired(self uint32, gen uint8, now int64) bool {
	s := &t.shards[self&t.shardMask]
	m := s.slot(self >> t.shardBits)
	s.mu.Lock()
	due := m.live && m.gen == gen && m.refs == 0 && m.last+t.linger <= now
	s.mu.Unlock()
	// Between the check and remove's own check (under the same lock) the
	// mapping can only be referenced again, which remove sees.
	return due && t.remove(self, gen, removeIdle, now)
}

// Flush frees every mapping, referenced or not. Ids handed out before are
// void: Release ignores them (up to a 1 in 128 chance of a slot reused
// with the same generation bits, so callers should flush the connection
// table first, as conntrack -F and a NAT reload do).
func (t *Table) Flush() {
	var victims [expireBatch]struct {
		self uint32
		gen  uint8
	}
	for si := range t.shards {
		s := &t.shards[si]
		for slot := uint32(0); ; {
			n := 0
			s.mu.Lock()
			used := s.used
			for ; slot < used && n < expireBatch; slot++ {
				if m := s.slot(slot); m.live {
					victims[n].self, victims[n].gen = m.self, m.gen
					n++
				}
			}
			s.mu.Unlock()
			for _, v := range victims[:n] {
				t.remove(v.self, v.gen, removeForce, 0)
			}
			if slot >= used {
				break
			}
		}
	}
}

// MappingInfo describes one mapping for Walk.
type MappingInfo struct {
	Proto            uint8
	Inside, External Endpoint
	Domain           [4]byte // the pool's Lo
	Refs             int
	Filtering        Filtering
	Remotes          []Endpoint // recent remotes, oldest first
	IdleFor          time.Duration
}

// Walk calls fn for every mapping, shard by shard, until fn returns false.
// fn runs without the table's locks (it may call the table); mappings
// created or freed during the walk may or may not be seen.
func (t *Table) Walk(now int64, fn func(MappingInfo) bool) {
	var batch [expireBatch]mapping
	for si := range t.shards {
		s := &t.shards[si]
		for slot := uint32(0); ; {
			n := 0
			s.mu.Lock()
			used := s.used
			for ; slot < used && n < expireBatch; slot++ {
				if m := s.slot(slot); m.live {
					batch[n] = *m
					n++
				}
			}
			s.mu.Unlock()
			for i := range batch[:n] {
				if !fn(batch[i].info(now)) {
					return
				}
			}
			if slot >= used {
				break
			}
		}
	}
}

func (m *mapping) info(now int64) MappingInfo {
	mi := MappingInfo{
		Proto: m.proto, Inside: m.inside, External: m.ext, Domain: m.dom,
		Refs: int(m.refs), Filtering: m.filt, IdleFor: time.Duration(now - m.last),
	}
	if mi.IdleFor < 0 {
		mi.IdleFor = 0
	}
	mi.Remotes = make([]Endpoint, 0, m.nrem)
	start := 0
	if m.nrem == MaxRemotes {
		start = int(m.rhead)
	}
	for i := range int(m.nrem) {
		mi.Remotes = append(mi.Remotes, m.remotes[(start+i)%MaxRemotes])
	}
	return mi
}

// Stats are the table's counters.
type Stats struct {
	Mappings, TCP, UDP, ICMP int // live mappings (UDP counts UDP-Lite)
	Lingering                int // of which with no references
	Created, Freed           uint64
	PoolExhausted, TableFull uint64 // Map failures
	Refused                  uint64 // Inbound refused by filtering
	Reclaimed                uint64 // lingering mappings freed early by a full table
}

// Stats sums the shards' counters (one shard lock at a time).
func (t *Table) Stats() Stats {
	var st Stats
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		st.Mappings += s.live
		st.TCP += s.tcp
		st.UDP += s.udp
		st.ICMP += s.icmp
		st.Lingering += s.lingering
		st.Created += s.created
		st.Freed += s.freed
		st.PoolExhausted += s.exhausted
		st.TableFull += s.full
		st.Refused += s.refused
		st.Reclaimed += s.reclaimed
		s.mu.Unlock()
	}
	return st
}
