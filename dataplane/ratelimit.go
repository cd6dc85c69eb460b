package dataplane

import "time"

// rateLimiter limits the ICMP errors a worker sends the way Linux does
// (net/ipv4/icmp.c): a token bucket per destination (icmp_ratelimit: one
// per second, bursts of six, as inet_peer_xrlim_allow) and a global one
// (icmp_msgs_per_sec 1000, icmp_msgs_burst 50). Each worker keeps its own
// buckets so no lock is shared; with N workers the bound is N times looser,
// which matters little against the goal of not amplifying floods.
//
// Per-destination buckets live in a small direct-mapped table: a collision
// evicts the older destination, which only ever errs on the side of
// sending (its replacement starts with a full burst).
type rateLimiter struct {
	slots  [256]rlSlot
	global rlSlot
}

type rlSlot struct {
	ip     uint32
	used   bool
	tokens time.Duration
	last   time.Time
}

const (
	rlInterval    = time.Second // icmp_ratelimit
	rlBurst       = 6 * rlInterval
	rlGlobalCost  = time.Millisecond // 1000 per second
	rlGlobalBurst = 50 * rlGlobalCost
)

func (r *rateLimiter) init() {}

func (s *rlSlot) take(now time.Time, cost, burst time.Duration) bool {
	s.tokens += now.Sub(s.last)
	s.last = now
	if s.tokens > burst {
		s.tokens = burst
	}
	if s.tokens < cost {
		return false
	}
	s.tokens -= cost
	return true
}

// allow reports whether an ICMP error to dst may be sent now.
func (r *rateLimiter) allow(dst uint32, now time.Time) bool {
	if !r.global.used {
		r.global = rlSlot{used: true, tokens: rlGlobalBurst, last: now}
	}
	s := &r.slots[(dst*2654435761)>>24]
	if !s.used || s.ip != dst {
		*s = rlSlot{ip: dst, used: true, tokens: rlBurst, last: now}
	}
	if !r.global.take(now, rlGlobalCost, rlGlobalBurst) {
		return false
	}
	return s.take(now, rlInterval, rlBurst)
}
