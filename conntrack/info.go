package conntrack

import (
	"fmt"
	"strings"
	"time"
)

// Info is a copy of one entry for display (ferryctl show conntrack).
type Info struct {
	Proto uint8
	// TCPState is the TCP state as Linux prints it (ESTABLISHED,
	// TIME_WAIT, ...); empty for other protocols.
	TCPState  string
	Orig      Tuple
	Reply     Tuple
	Timeout   time.Duration // left before expiry, at the now Walk was given
	Packets   [2]uint64     // original, reply
	Assured   bool
	Unreplied bool
	Mark      uint32
	NAT       uint32
}

// String formats the entry as `conntrack -L` does.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %d %d ", protoName(i.Proto), i.Proto, int64(i.Timeout/time.Second))
	if i.TCPState != "" {
		b.WriteString(i.TCPState + " ")
	}
	writeTuple(&b, &i.Orig)
	fmt.Fprintf(&b, "packets=%d ", i.Packets[0])
	if i.Unreplied {
		b.WriteString("[UNREPLIED] ")
	}
	writeTuple(&b, &i.Reply)
	fmt.Fprintf(&b, "packets=%d ", i.Packets[1])
	if i.Assured {
		b.WriteString("[ASSURED] ")
	}
	fmt.Fprintf(&b, "mark=%d", i.Mark)
	return b.String()
}

func writeTuple(b *strings.Builder, t *Tuple) {
	fmt.Fprintf(b, "src=%s dst=%s ", t.SrcAddr(), t.DstAddr())
	switch {
	case t.isICMP():
		fmt.Fprintf(b, "type=%d code=%d id=%d ", t.ICMPType(), t.ICMPCode(), t.SrcPort)
	case t.SrcPort != 0 || t.DstPort != 0:
		fmt.Fprintf(b, "sport=%d dport=%d ", t.SrcPort, t.DstPort)
	}
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoUDPLite:
		return "udplite"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	}
	return "unknown"
}

// Walk calls fn with a copy of every live entry until fn returns false.
// It locks one entry at a time, so workers keep running; an entry that is
// inserted or removed during the walk may or may not be seen. now is the
// caller's clock, for Info.Timeout; expired entries are skipped.
func (t *Table) Walk(now int64, fn func(Info) bool) {
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		used := s.used
		s.mu.Unlock()
		for slot := uint32(0); slot < used; slot++ {
			s.mu.Lock()
			c := s.slot(slot)
			if !c.live {
				s.mu.Unlock()
				continue
			}
			c.mu.Lock()
			i := c.info(now)
			c.mu.Unlock()
			s.mu.Unlock()
			if i.Timeout <= 0 {
				continue
			}
			if !fn(i) {
				return
			}
		}
	}
}

func (c *Conn) info(now int64) Info {
	i := Info{
		Proto:     c.Orig.Proto,
		Orig:      c.Orig,
		Reply:     c.Reply,
		Timeout:   time.Duration(c.deadline.Load() - now),
		Packets:   [2]uint64{uint64(c.pkts[0]), uint64(c.pkts[1])},
		Assured:   c.status&stAssured != 0,
		Unreplied: c.status&stSeenReply == 0,
		Mark:      c.Mark,
		NAT:       c.NAT,
	}
	if i.Proto == ProtoTCP && c.state < tcpNumStates {
		i.TCPState = tcpStateNames[c.state]
	}
	return i
}

// Stats are the table's counters and a census of its entries.
type Stats struct {
	Capacity   int
	Entries    int // live entries (some may be expired, not yet freed)
	TCP        int
	UDP        int
	ICMP       int // ICMP and ICMPv6
	Other      int
	Assured    int
	Unreplied  int
	TCPStates  map[string]int // by Linux state name
	Inserts    uint64
	EarlyDrops uint64 // entries evicted to make room for new ones
	Expired    uint64 // entries freed after their timeout
	Invalid    uint64 // packets Track found invalid
	Clashes    uint64 // Confirms that found the flow already inserted
	Full       uint64 // Confirms refused: no room and nothing to drop
	ReplyTaken uint64 // Confirms refused: reply tuple owned by another flow
}

// Stats counts entries by protocol and state (a walk over the table:
// control path only) and sums the shards' counters.
func (t *Table) Stats() Stats {
	st := Stats{Capacity: t.capacity, TCPStates: map[string]int{}, Invalid: t.invalidNS.Load()}
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		st.Inserts += s.inserts
		st.EarlyDrops += s.earlyDrops
		st.Expired += s.expired
		st.Clashes += s.clashes
		st.Full += s.full
		st.ReplyTaken += s.taken
		used := s.used
		s.mu.Unlock()
		st.Invalid += s.invalid.Load()
		for slot := uint32(0); slot < used; slot++ {
			s.mu.Lock()
			c := s.slot(slot)
			if c.live {
				c.mu.Lock()
				st.count(c)
				c.mu.Unlock()
			}
			s.mu.Unlock()
		}
	}
	return st
}

func (st *Stats) count(c *Conn) {
	st.Entries++
	switch c.Orig.Proto {
	case ProtoTCP:
		st.TCP++
		if c.state < tcpNumStates {
			st.TCPStates[tcpStateNames[c.state]]++
		}
	case ProtoUDP, ProtoUDPLite:
		st.UDP++
	case ProtoICMP, ProtoICMPv6:
		st.ICMP++
	default:
		st.Other++
	}
	if c.status&stAssured != 0 {
		st.Assured++
	}
	if c.status&stSeenReply == 0 {
		st.Unreplied++
	}
}

// Len is the number of entries in the table (live or awaiting expiry),
// without a census.
func (t *Table) Len() int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

// Count is the number of entries in the table (live and reserved, some
// perhaps expired and not yet freed) without walking it: one shard lock
// at a time, for the metrics endpoint.
func (t *Table) Count() int {
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}
