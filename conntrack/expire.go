package conntrack

// expireBatch bounds the expired entries Expire collects under one shard
// lock before freeing them (freeing takes other shards' locks).
const expireBatch = 64

// Expire inspects up to budget slots, resuming where the last call
// stopped, and frees the entries whose deadline has passed. It returns how
// many it freed. Lookups expire entries lazily too; Expire returns the
// slots of flows that went quiet. Called from one goroutine at a time (a
// second caller waits); a full pass over a table of N slots takes N/budget
// calls.
func (t *Table) Expire(now int64, budget int) int {
	t.expireMu.Lock()
	defer t.expireMu.Unlock()
	var victims [expireBatch][2]uint32
	freed := 0
	for budget > 0 {
		si := t.expShard
		s := &t.shards[si]
		n := 0
		s.mu.Lock()
		for budget > 0 && t.expSlot < s.used && n < expireBatch {
			c := s.slot(t.expSlot)
			if c.live && c.deadline.Load() <= now {
				victims[n] = [2]uint32{c.self, c.gen}
				n++
			}
			t.expSlot++
			budget--
		}
		done := t.expSlot >= s.used
		s.mu.Unlock()
		for _, v := range victims[:n] {
			if t.remove(v[0], v[1], reasonExpired) {
				freed++
			}
		}
		if done {
			t.expSlot = 0
			t.expShard = (si + 1) % len(t.shards)
			budget-- // an empty shard still costs a step, so the loop ends
		}
	}
	return freed
}

// Flush removes every entry (conntrack -F).
func (t *Table) Flush() {
	for si := range t.shards {
		s := &t.shards[si]
		var victims [expireBatch][2]uint32
		for slot := uint32(0); ; {
			n := 0
			s.mu.Lock()
			used := s.used
			for ; slot < used && n < expireBatch; slot++ {
				if c := s.slot(slot); c.live {
					victims[n] = [2]uint32{c.self, c.gen}
					n++
				}
			}
			s.mu.Unlock()
			for _, v := range victims[:n] {
				t.remove(v[0], v[1], reasonFlush)
			}
			if slot >= used {
				break
			}
		}
	}
}
