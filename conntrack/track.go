package conntrack

// timeoutsNS are the configured timeouts in the caller's clock unit (ns),
// TCP ones indexed by tcpState.
type timeoutsNS struct {
	tcp                       [tcpNumStates]int64
	retrans, unack            int64
	udp, udpStream, icmp, gen int64
}

func (t *Timeouts) ns() timeoutsNS {
	var o timeoutsNS
	o.tcp[tcpNone] = int64(t.TCPSynSent)
	o.tcp[tcpSynSent] = int64(t.TCPSynSent)
	o.tcp[tcpSynRecv] = int64(t.TCPSynRecv)
	o.tcp[tcpEstablished] = int64(t.TCPEstablished)
	o.tcp[tcpFinWait] = int64(t.TCPFinWait)
	o.tcp[tcpCloseWait] = int64(t.TCPCloseWait)
	o.tcp[tcpLastAck] = int64(t.TCPLastAck)
	o.tcp[tcpTimeWait] = int64(t.TCPTimeWait)
	o.tcp[tcpClose] = int64(t.TCPClose)
	o.tcp[tcpSynSent2] = int64(t.TCPSynSent)
	o.retrans = int64(t.TCPMaxRetrans)
	o.unack = int64(t.TCPUnacknowledged)
	o.udp, o.udpStream = int64(t.UDP), int64(t.UDPStream)
	o.icmp, o.gen = int64(t.ICMP), int64(t.Generic)
	return o
}

// udpStreamDelay: a UDP flow answered and still active this long after its
// first packet is a stream (Linux: 2 s), given the long timeout and ASSURED.
const udpStreamDelay = 2e9

// verdict is what a protocol tracker decided about a packet of a known
// entry.
type verdict uint8

const (
	vAccept  verdict = iota // state updated, timeout refreshed
	vIgnore                 // passes with the entry's state, changes nothing
	vInvalid                // does not fit the entry: invalid, changes nothing
	vReopen                 // a SYN reopening a closed flow: drop the entry, track anew
)

// Track finds the connection of the packet m describes, in either
// direction, and updates it: TCP state and windows, timeouts, counters.
// now is the caller's clock in nanoseconds (any epoch, monotonic).
//
// A packet that may start a connection and matches no live entry is
// written into scratch (Orig is its tuple, Reply the inverse) and returned
// with State New and Conn == scratch: it is in no table yet. The caller
// passes it to Confirm once the packet is accepted (after NAT has chosen
// c.Reply), or drops it and forgets it. The scratch must not be given to
// Track again before then: a worker that tracks a whole batch before it
// confirms keeps one scratch Conn per packet of the batch. Two packets of
// one new flow in a batch both come back New; the second Confirm finds
// the first's entry (a clash) and returns it. Track allocates nothing.
func (t *Table) Track(m *Meta, now int64, scratch *Conn) Result {
	if m.Truncated {
		return t.invalid(nil)
	}
	k := &m.Tuple
	switch k.Proto {
	case ProtoTCP:
		if !tcpValidFlags(m.Flags) {
			return t.invalid(nil)
		}
	case ProtoICMP, ProtoICMPv6:
		switch classifyICMP(k.Proto, k.ICMPType()) {
		case icmpError:
			return t.related(m, now)
		case icmpUntracked:
			return Result{State: StateUntracked}
		case icmpOther:
			return t.invalid(nil)
		}
	}
	for range maxAttempts {
		c, dir := t.lookup(k)
		if c == nil {
			break
		}
		if c.deadline.Load() <= now {
			// Lazy expiry: the entry is dead; free it and treat the
			// packet as the first of a new flow.
			self, gen := c.self, c.gen
			c.mu.Unlock()
			t.remove(self, gen, reasonExpired)
			continue
		}
		var v verdict
		switch k.Proto {
		case ProtoTCP:
			v = t.tcpPacket(c, m, dir, now)
		case ProtoUDP, ProtoUDPLite:
			v = t.udpPacket(c, dir, now)
		case ProtoICMP, ProtoICMPv6:
			c.deadline.Store(now + t.timeouts.icmp)
		default:
			c.deadline.Store(now + t.timeouts.gen)
		}
		switch v {
		case vInvalid:
			c.mu.Unlock()
			return t.invalid(c)
		case vReopen:
			self, gen := c.self, c.gen
			c.mu.Unlock()
			t.remove(self, gen, reasonKilled)
			continue
		}
		res := Result{Conn: c, Dir: dir, State: StateEstablished, Mark: c.Mark, NAT: c.NAT}
		if c.NAT != 0 {
			res.Other = *c.tuple(1 - dir)
		}
		if dir == Reply {
			c.status |= stSeenReply
		} else if c.status&stSeenReply == 0 {
			res.State = StateNew
		}
		if v == vAccept {
			c.pkts[dir]++
		}
		c.mu.Unlock()
		return res
	}
	return t.start(m, now, scratch)
}

// start fills scratch for the first packet of a flow.
func (t *Table) start(m *Meta, now int64, c *Conn) Result {
	k := &m.Tuple
	if k.isICMP() && classifyICMP(k.Proto, k.ICMPType()) != icmpRequest {
		// An echo reply (or other answer) to nothing we saw.
		return t.invalid(nil)
	}
	reply, ok := k.Invert()
	if !ok {
		return t.invalid(nil)
	}
	c.connData = connData{Orig: *k, Reply: reply, pending: true}
	c.next = [2]uint32{nilRef, nilRef}
	switch k.Proto {
	case ProtoTCP:
		if !t.tcpStart(c, m, now) {
			return t.invalid(nil)
		}
	case ProtoUDP, ProtoUDPLite:
		c.deadline.Store(now + t.timeouts.udp)
		c.setUDPStreamAt(now + udpStreamDelay)
	case ProtoICMP, ProtoICMPv6:
		c.deadline.Store(now + t.timeouts.icmp)
	default:
		c.deadline.Store(now + t.timeouts.gen)
	}
	c.pkts[Original] = 1
	return Result{Conn: c, Dir: Original, State: StateNew}
}

// related handles an ICMP error: it belongs to the flow of the packet it
// quotes and changes nothing in it (no refresh, no state). The quote is
// the packet as its sender sent it, so its inverse is what travels in the
// error's direction; looking that up finds the entry through a NAT as
// well (Linux does the same).
func (t *Table) related(m *Meta, now int64) Result {
	if !m.HasInner || m.Inner.V6 != m.Tuple.V6 {
		return t.invalid(nil)
	}
	k, ok := m.Inner.Invert()
	if !ok {
		return t.invalid(nil)
	}
	c, dir := t.lookup(&k)
	if c == nil {
		return t.invalid(nil)
	}
	if c.deadline.Load() <= now {
		c.mu.Unlock()
		return t.invalid(nil)
	}
	res := Result{Conn: c, Dir: dir, State: StateRelated, Mark: c.Mark, NAT: c.NAT}
	if c.NAT != 0 {
		res.Other = *c.tuple(1 - dir)
	}
	c.mu.Unlock()
	return res
}

// invalid counts an invalid packet, on its entry's shard when it has one.
func (t *Table) invalid(c *Conn) Result {
	if c != nil {
		t.shards[c.self&t.shardMask].invalid.Add(1)
	} else {
		t.invalidNS.Add(1)
	}
	return Result{State: StateInvalid}
}

// udpPacket refreshes a UDP entry as Linux's udp_packet does: 30 s until
// answered; once answered, 30 s for an exchange that ends within 2 s of the
// first packet (DNS), else 120 s and ASSURED.
func (t *Table) udpPacket(c *Conn, dir Dir, now int64) verdict {
	if c.status&stSeenReply == 0 {
		c.deadline.Store(now + t.timeouts.udp)
		return vAccept
	}
	if now > c.udpStreamAt() {
		c.deadline.Store(now + t.timeouts.udpStream)
		c.status |= stAssured
	} else {
		c.deadline.Store(now + t.timeouts.udp)
	}
	return vAccept
}

// A UDP entry keeps the time its stream timeout may start in the TCP
// fields it does not use.
func (c *connData) setUDPStreamAt(ns int64) {
	c.tcp.lastSeq, c.tcp.lastEnd = uint32(uint64(ns)>>32), uint32(ns)
}

func (c *connData) udpStreamAt() int64 {
	return int64(uint64(c.tcp.lastSeq)<<32 | uint64(c.tcp.lastEnd))
}

// SetMark sets the connection mark of a confirmed entry (nft `ct mark
// set`); for an unconfirmed scratch Conn set c.Mark directly.
func (t *Table) SetMark(c *Conn, mark uint32) {
	if c.pending {
		c.Mark = mark
		return
	}
	c.mu.Lock()
	c.Mark = mark
	c.mu.Unlock()
}

// Lookup reports whether tuple k belongs to a live entry, and in which
// direction; NAT asks it when choosing a reply tuple.
func (t *Table) Lookup(k *Tuple, now int64) (Dir, bool) {
	c, d := t.lookup(k)
	if c == nil {
		return 0, false
	}
	alive := c.deadline.Load() > now
	c.mu.Unlock()
	return d, alive
}
