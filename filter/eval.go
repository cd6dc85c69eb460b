package filter

import (
	"encoding/binary"
	"sync/atomic"
)

// Packet is what the filter reads. The dataplane fills one per worker
// and reuses it; Eval writes Mark and CtMark when a rule sets them, so
// later rules see the new values, as in nft.
type Packet struct {
	Family   uint8    // 4 or 6
	IIf, OIf int      // port index (Env.Interfaces), -1: none
	Src, Dst [16]byte // IPv4 as v4-mapped (::ffff:a.b.c.d)
	L4Proto  uint8
	SrcPort  uint16
	DstPort  uint16
	// HasPorts: the first L4 bytes are present: ports (TCP, UDP, ...),
	// ICMP type and code, TCP flags. False for a truncated L4 header or a
	// non-first fragment: then no port, ICMP or TCP flags match matches,
	// negated or not.
	HasPorts bool
	ICMPType uint8
	ICMPCode uint8
	TCPFlags uint8
	Length   uint32 // the IP packet's length (meta length, ip length)
	Mark     uint32
	DSCP     uint8
	CtState  uint8 // one of CtNew, CtEstablished, CtRelated, CtInvalid, CtUntracked
	CtMark   uint32
}

// Action is what becomes of the packet.
type Action uint8

const (
	ActAccept Action = iota
	ActDrop
	ActReject // drop and answer as Result.Reject says
)

var actionNames = [...]string{"accept", "drop", "reject"}

func (a Action) String() string { return actionNames[a] }

// Result is Eval's answer.
type Result struct {
	Action    Action
	Reject    RejectKind
	SetMark   bool // a rule set the packet mark to Mark
	Mark      uint32
	SetCtMark bool // a rule set the connection's mark to CtMark
	CtMark    uint32
	NAT       int // EvalNAT: the NAT statement that matched (Program.NAT), 0: none
}

// Counters are one worker's rule counters, so that counting never
// bounces a cache line between workers. Listing sums them.
type Counters struct {
	c []counterPair
	// stack is runBase's jump stack, kept here because a fresh one (640
	// bytes) zeroed for every evaluation was a third of Eval's time.
	stack [MaxJumpDepth]frame
}

type counterPair struct {
	pkts, bytes atomic.Uint64 // one writer (the worker); the listing reads
}

// NewCounters returns counters for one worker of this Program.
func (p *Program) NewCounters() *Counters {
	return &Counters{c: make([]counterPair, p.nslots)}
}

type cmpKind uint8

const (
	cmpRange   cmpKind = iota // lo <= v&mask <= hi
	cmpSet                    // v&mask in set
	cmpFlags                  // v & lo != 0
	cmpNamed                  // v&mask in the named set's current data
	cmpIfmask                 // port index bit set in ifs
	cmpPrefix4                // ip & hi == lo
	cmpPrefix6                // ip & mask6 == net6
)

// matcher is one compiled match.
type matcher struct {
	field  Field
	cmp    cmpKind
	neg    bool
	fam    uint8      // 4, 6: required packet family; 0 any
	l4     bool       // requires HasPorts
	protos *[4]uint64 // required L4 protocols; nil any
	mask   uint32
	lo, hi uint32
	net6   u128
	mask6  u128
	set    *setData
	named  *namedSet
	ifs    []uint64
}

func (m *matcher) match(p *Packet) bool {
	if m.fam != 0 && p.Family != m.fam {
		return false
	}
	if m.protos != nil && m.protos[p.L4Proto>>6]&(1<<(p.L4Proto&63)) == 0 {
		return false
	}
	if m.l4 && !p.HasPorts {
		return false
	}
	var in bool
	switch m.field {
	case FIPSaddr, FIPDaddr:
		a := &p.Src
		if m.field == FIPDaddr {
			a = &p.Dst
		}
		switch m.cmp {
		case cmpPrefix4:
			in = binary.BigEndian.Uint32(a[12:])&m.hi == m.lo
		case cmpSet:
			in = m.set.has4(a)
		default:
			in = m.named.cur.Load().has4(a)
		}
	case FIP6Saddr, FIP6Daddr:
		a := &p.Src
		if m.field == FIP6Daddr {
			a = &p.Dst
		}
		switch m.cmp {
		case cmpPrefix6:
			k := keyOf(a)
			in = k.hi&m.mask6.hi == m.net6.hi && k.lo&m.mask6.lo == m.net6.lo
		case cmpSet:
			in = m.set.has6(a)
		default:
			in = m.named.cur.Load().has6(a)
		}
	case FIifname, FIif, FOifname, FOif:
		i := p.IIf
		if m.field == FOifname || m.field == FOif {
			i = p.OIf
		}
		in = i >= 0 && i/64 < len(m.ifs) && m.ifs[i/64]&(1<<(i%64)) != 0
	default:
		v := m.load(p) & m.mask
		switch m.cmp {
		case cmpRange:
			in = m.lo <= v && v <= m.hi
		case cmpFlags:
			in = v&m.lo != 0
		case cmpSet:
			in = m.set.v32.contains(v)
		default:
			in = m.named.cur.Load().v32.contains(v)
		}
	}
	return in != m.neg
}

func (m *matcher) load(p *Packet) uint32 {
	switch m.field {
	case FIPProtocol, FIP6Nexthdr, FL4Proto:
		return uint32(p.L4Proto)
	case FNfproto:
		if p.Family == 6 {
			return 10
		}
		return 2
	case FTCPSport, FUDPSport, FTHSport:
		return uint32(p.SrcPort)
	case FTCPDport, FUDPDport, FTHDport:
		return uint32(p.DstPort)
	case FICMPType, FICMPv6Type:
		return uint32(p.ICMPType)
	case FICMPCode, FICMPv6Code:
		return uint32(p.ICMPCode)
	case FTCPFlags:
		return uint32(p.TCPFlags)
	case FCtState:
		return uint32(p.CtState)
	case FCtMark:
		return p.CtMark
	case FMark:
		return p.Mark
	case FMetaLength, FIPLength:
		return p.Length
	case FIPDscp, FIP6Dscp:
		return uint32(p.DSCP)
	}
	return 0
}

// Eval runs the packet through the base chains at hook h in priority
// order. An accept moves on to the next base chain; a drop or reject
// ends it. now is a monotonic clock in nanoseconds, for limits and log
// rate limiting. ctr is the calling worker's Counters (nil: not counted).
// Eval does not allocate.
func (p *Program) Eval(h Hook, pkt *Packet, ctr *Counters, now int64) Result {
	var res Result
	fb := famBit(pkt.Family)
	for _, c := range p.hooks[h] {
		if c.fams&fb == 0 {
			continue
		}
		if a := p.runBase(c, h, pkt, ctr, now, &res); a != ActAccept {
			res.Action = a
			return res
		}
	}
	return res
}

type frame struct {
	ch   *cchain
	list []int32
	pos  int
}

func (p *Program) candidates(c *cchain, pkt *Packet) []int32 {
	if p.linear {
		return c.all
	}
	return c.idx.lookup(pkt)
}

// runBase evaluates one base chain with its jumps; it returns the
// chain's verdict, its policy when no rule decided.
func (p *Program) runBase(base *cchain, h Hook, pkt *Packet, ctr *Counters, now int64, res *Result) Action {
	var stack *[MaxJumpDepth]frame
	if ctr != nil {
		stack = &ctr.stack
	} else {
		stack = new([MaxJumpDepth]frame)
	}
	sp := 0
	cur := base
	list := p.candidates(cur, pkt)
	i := 0
	for {
		if i == len(list) {
			if sp == 0 {
				return base.policy
			}
			sp--
			cur, list, i = stack[sp].ch, stack[sp].list, stack[sp].pos
			continue
		}
		r := &cur.rules[list[i]]
		i++
		if !p.runRule(r, cur, h, pkt, ctr, now, res) {
			continue
		}
		switch r.verdict {
		case VContinue:
		case VAccept:
			return ActAccept
		case VDrop:
			return ActDrop
		case VReject:
			res.Reject = r.reject
			return ActReject
		case VNAT:
			res.NAT = r.nat
			return ActAccept
		case VJump:
			stack[sp] = frame{cur, list, i}
			sp++
			cur = r.target
			list, i = p.candidates(cur, pkt), 0
		case VGoto:
			cur = r.target
			list, i = p.candidates(cur, pkt), 0
		case VReturn:
			if sp == 0 {
				return base.policy
			}
			sp--
			cur, list, i = stack[sp].ch, stack[sp].list, stack[sp].pos
		}
	}
}

// runRule runs a rule's expressions in order; false when a match fails.
func (p *Program) runRule(r *crule, c *cchain, h Hook, pkt *Packet, ctr *Counters, now int64, res *Result) bool {
	for k := range r.ops {
		o := &r.ops[k]
		switch o.kind {
		case opMatch:
			if !o.m.match(pkt) {
				return false
			}
		case opCounter:
			if ctr != nil {
				cp := &ctr.c[o.slot]
				cp.pkts.Add(1)
				cp.bytes.Add(uint64(pkt.Length))
			}
		case opLimit:
			if o.lim.allow(now) == o.lim.over {
				return false
			}
		case opLog:
			o.log.emit(h, c.name, pkt, now)
		case opSetMark:
			pkt.Mark = o.val
			res.SetMark, res.Mark = true, o.val
		case opSetCtMark:
			pkt.CtMark = o.val
			res.SetCtMark, res.CtMark = true, o.val
		}
	}
	return true
}
