package filter

import "sync/atomic"

// limiter is a token bucket kept as GCRA's theoretical arrival time in
// one atomic word, so that workers share it without a lock: a packet
// conforms when the bucket's next free time is at most tol ahead of now,
// and then pushes it interval further.
type limiter struct {
	tat      atomic.Int64
	interval int64 // ns per packet at the rate
	tol      int64 // (burst-1) intervals: how far ahead tat may run
	over     bool  // `limit rate over`: the rule matches above the rate
}

var unitNS = map[string]int64{"second": 1e9, "minute": 60e9, "hour": 3600e9, "day": 86400e9}

// defaultBurst is nft's burst when none is written.
const defaultBurst = 5

func newLimiter(s *Stmt) *limiter {
	burst := int64(s.Burst)
	if burst == 0 {
		burst = defaultBurst
	}
	iv := unitNS[s.Unit] / int64(s.Rate)
	return &limiter{interval: iv, tol: (burst - 1) * iv, over: s.Over}
}

// allow takes a token if one is free at now.
func (l *limiter) allow(now int64) bool {
	// Bounded: under contention a few failed swaps count as over the
	// limit rather than spin.
	for try := 0; try < 4; try++ {
		old := l.tat.Load()
		t := max(old, now)
		if t-now > l.tol {
			return false
		}
		if l.tat.CompareAndSwap(old, t+l.interval) {
			return true
		}
	}
	return false
}

// logger rate-limits one log statement's events to the Env's callback.
type logger struct {
	prefix, level string
	fn            func(LogEvent)
	lim           limiter
	suppressed    atomic.Uint64
}

func (g *logger) emit(h Hook, chain string, pkt *Packet, now int64) {
	if g.fn == nil {
		return
	}
	if !g.lim.allow(now) {
		g.suppressed.Add(1)
		return
	}
	g.fn(LogEvent{Prefix: g.prefix, Level: g.level, Hook: h, Chain: chain, Packet: *pkt, Suppressed: g.suppressed.Swap(0)})
}
