package fib

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Policy routing
//
// Policy holds numbered tables (each a FIB) and ip-rule-style rules. A
// lookup walks the rules in priority order, as Linux does: the first rule
// whose selectors all match either ends the lookup with its action
// (blackhole, unreachable, prohibit) or looks the destination up in its
// table; a table with no matching route lets the walk fall through to the
// next rule. There is no goto action, so rules cannot loop.
//
// The rules are compiled into a flat slice published with an atomic
// pointer; lookups read one snapshot, take no lock and do not allocate.
// Rule changes rebuild the slice (a handful of entries) under a mutex.

// Well-known table numbers, as in Linux.
const (
	TableDefault uint32 = 253
	TableMain    uint32 = 254
	TableLocal   uint32 = 255
)

// RuleAction is what a matching rule does.
type RuleAction uint8

// Rule actions.
const (
	RuleLookup      RuleAction = iota // look up Rule.Table; fall through if no route
	RuleBlackhole                     // drop silently
	RuleUnreachable                   // ICMP unreachable
	RuleProhibit                      // ICMP administratively prohibited
)

var actionNames = [...]string{"lookup", "blackhole", "unreachable", "prohibit"}

func (a RuleAction) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("RuleAction(%d)", uint8(a))
}

// Rule is one policy rule. Zero selectors match everything, except IIf,
// where -1 means any input port.
type Rule struct {
	Priority uint32
	From     netip.Prefix // source prefix; zero = any
	To       netip.Prefix // destination prefix; zero = any
	IIf      int          // input port index; -1 = any
	Mark     uint32       // fwmark to match under MarkMask
	MarkMask uint32       // 0 with Mark != 0 means 0xffffffff; both 0 = any
	Action   RuleAction
	Table    uint32 // for RuleLookup
}

func (r Rule) String() string {
	s := fmt.Sprintf("%d:", r.Priority)
	if r.From.IsValid() {
		s += " from " + r.From.String()
	} else {
		s += " from all"
	}
	if r.To.IsValid() {
		s += " to " + r.To.String()
	}
	if r.IIf >= 0 {
		s += fmt.Sprintf(" iif %d", r.IIf)
	}
	if r.Mark != 0 || r.MarkMask != 0 {
		s += fmt.Sprintf(" fwmark %#x/%#x", r.Mark, r.mask())
	}
	if r.Action == RuleLookup {
		return s + fmt.Sprintf(" lookup %s", TableName(r.Table))
	}
	return s + " " + r.Action.String()
}

// TableName names the well-known tables and numbers the rest.
func TableName(id uint32) string {
	switch id {
	case TableMain:
		return "main"
	case TableLocal:
		return "local"
	case TableDefault:
		return "default"
	}
	return fmt.Sprint(id)
}

func (r Rule) mask() uint32 {
	if r.MarkMask == 0 && r.Mark != 0 {
		return ^uint32(0)
	}
	return r.MarkMask
}

// family is 4 or 6 for a rule that only matches one family, else 0.
func (r Rule) family() int {
	for _, p := range []netip.Prefix{r.From, r.To} {
		if p.IsValid() {
			if p.Addr().Is4() {
				return 4
			}
			return 6
		}
	}
	return 0
}

func (r Rule) validate() error {
	for _, p := range []netip.Prefix{r.From, r.To} {
		if p.IsValid() && p.Masked() != p {
			return fmt.Errorf("%w: rule %v: %v has host bits set", ErrInvalid, r, p)
		}
		if p.IsValid() && p.Addr().Is4In6() {
			return fmt.Errorf("%w: rule %v: IPv4-mapped prefix", ErrInvalid, r)
		}
	}
	if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4() {
		return fmt.Errorf("%w: rule %v: from and to differ in address family", ErrInvalid, r)
	}
	if r.IIf < -1 {
		return fmt.Errorf("%w: rule %v: input port %d", ErrInvalid, r, r.IIf)
	}
	if r.Mark&^r.mask() != 0 {
		return fmt.Errorf("%w: rule %v: mark has bits outside its mask", ErrInvalid, r)
	}
	if r.Action > RuleProhibit {
		return fmt.Errorf("%w: rule %v: unknown action", ErrInvalid, r)
	}
	if r.Action == RuleLookup && r.Table == 0 {
		return fmt.Errorf("%w: rule %v: lookup needs a table", ErrInvalid, r)
	}
	return nil
}

// Flow4 is what IPv4 rules select on.
type Flow4 struct {
	Src, Dst uint32 // host byte order
	IIf      int    // input port; -1 for locally generated packets
	Mark     uint32
}

// Flow6 is what IPv6 rules select on.
type Flow6 struct {
	Src, Dst netip.Addr
	IIf      int
	Mark     uint32
}

// compiled is a rule ready for the packet path.
type compiled struct {
	fam              int
	from4, fromMask4 uint32
	to4, toMask4     uint32
	from6, to6       netip.Prefix
	iif              int
	mark, mask       uint32
	table            *FIB
	result           *NextHop // for actions other than lookup
	rule             Rule
	tableID          uint32
}

var actionHops = [...]*NextHop{
	RuleBlackhole:   {Type: Blackhole, Dev: -1},
	RuleUnreachable: {Type: Unreachable, Dev: -1},
	RuleProhibit:    {Type: Prohibit, Dev: -1},
}

// Policy is a set of routing tables and the rules that choose among them.
type Policy struct {
	rules atomic.Pointer[[]compiled]

	mu     sync.Mutex
	tables map[uint32]*FIB
	list   []Rule // sorted by priority, then insertion
}

// DefaultRule sends everything to the main table, as Linux's 32766 rule.
var DefaultRule = Rule{Priority: 32766, IIf: -1, Action: RuleLookup, Table: TableMain}

// NewPolicy returns a policy whose main table is main (a new FIB if nil)
// and whose only rule is DefaultRule.
func NewPolicy(main *FIB) *Policy {
	if main == nil {
		main = New()
	}
	p := &Policy{tables: map[uint32]*FIB{TableMain: main}, list: []Rule{DefaultRule}}
	p.compile()
	return p
}

// Table returns table id, creating it empty if need be.
func (p *Policy) Table(id uint32) *FIB {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.table(id)
}

func (p *Policy) table(id uint32) *FIB {
	t := p.tables[id]
	if t == nil {
		t = New()
		p.tables[id] = t
	}
	return t
}

// Tables lists the table numbers in use, ascending.
func (p *Policy) Tables() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]uint32, 0, len(p.tables))
	for id := range p.tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// AddRule adds r after any rules of the same priority. An identical rule
// is an error, as is an invalid one. A lookup rule creates its table.
func (p *Policy) AddRule(r Rule) error {
	if err := r.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(p.list, r) {
		return fmt.Errorf("%w: rule %v", ErrExists, r)
	}
	i := 0
	for i < len(p.list) && p.list[i].Priority <= r.Priority {
		i++
	}
	if r.Action == RuleLookup {
		p.table(r.Table)
	}
	p.list = slices.Insert(p.list, i, r)
	p.compile()
	return nil
}

// DeleteRule removes the rule equal to r.
func (p *Policy) DeleteRule(r Rule) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.list, r)
	if i < 0 {
		return fmt.Errorf("%w: rule %v", ErrNotFound, r)
	}
	p.list = slices.Delete(p.list, i, i+1)
	p.compile()
	return nil
}

// Rules returns the rules in the order lookups try them.
func (p *Policy) Rules() []Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.list)
}

// compile publishes a fresh compiled snapshot of p.list. Caller holds mu.
func (p *Policy) compile() {
	cs := make([]compiled, len(p.list))
	for i, r := range p.list {
		c := compiled{fam: r.family(), iif: r.IIf, mark: r.Mark, mask: r.mask(), rule: r, tableID: r.Table}
		if r.From.IsValid() {
			if r.From.Addr().Is4() {
				c.from4, c.fromMask4 = addr4(r.From.Addr()), mask4(r.From.Bits())
			} else {
				c.from6 = r.From
			}
		}
		if r.To.IsValid() {
			if r.To.Addr().Is4() {
				c.to4, c.toMask4 = addr4(r.To.Addr()), mask4(r.To.Bits())
			} else {
				c.to6 = r.To
			}
		}
		if r.Action == RuleLookup {
			c.table = p.tables[r.Table]
		} else {
			c.result = actionHops[r.Action]
		}
		cs[i] = c
	}
	p.rules.Store(&cs)
}

func mask4(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func (c *compiled) match(iif int, mark uint32) bool {
	return (c.iif < 0 || c.iif == iif) && mark&c.mask == c.mark
}

// Lookup4 walks the rules for an IPv4 flow and returns the next hop, or
// nil if no rule yields a route. It never blocks and does not allocate.
func (p *Policy) Lookup4(k Flow4) *NextHop {
	h, _ := p.lookup4(k)
	return h
}

func (p *Policy) lookup4(k Flow4) (*NextHop, *compiled) {
	rs := *p.rules.Load()
	for i := range rs {
		c := &rs[i]
		if c.fam == 6 || k.Src&c.fromMask4 != c.from4 || k.Dst&c.toMask4 != c.to4 || !c.match(k.IIf, k.Mark) {
			continue
		}
		if c.table == nil {
			return c.result, c
		}
		if h := c.table.Lookup4(k.Dst); h != nil {
			return h, c
		}
	}
	return nil, nil
}

// Lookup4Batch runs Lookup4 for every flow into out.
func (p *Policy) Lookup4Batch(k []Flow4, out []*NextHop) {
	out = out[:len(k)]
	rs := *p.rules.Load()
	if len(rs) == 1 && rs[0].rule == DefaultRule {
		// Only the default rule: skip the walk. The main table pointer is
		// fixed for the life of the Policy.
		t := rs[0].table
		for i := range k {
			out[i] = t.Lookup4(k[i].Dst)
		}
		return
	}
	for i := range k {
		out[i], _ = p.lookup4(k[i])
	}
}

// Lookup6 walks the rules for an IPv6 flow.
func (p *Policy) Lookup6(k Flow6) *NextHop {
	h, _ := p.lookup6(k)
	return h
}

func (p *Policy) lookup6(k Flow6) (*NextHop, *compiled) {
	rs := *p.rules.Load()
	for i := range rs {
		c := &rs[i]
		if c.fam == 4 || (c.from6.IsValid() && !c.from6.Contains(k.Src)) || (c.to6.IsValid() && !c.to6.Contains(k.Dst)) || !c.match(k.IIf, k.Mark) {
			continue
		}
		if c.table == nil {
			return c.result, c
		}
		if h := c.table.Lookup6(k.Dst); h != nil {
			return h, c
		}
	}
	return nil, nil
}

// Decision explains a policy lookup, for "route get".
type Decision struct {
	Rule    Rule
	Table   uint32 // for a lookup rule
	Route   Route  // the matched route, for a lookup rule
	NextHop *NextHop
}

// Explain runs the lookup a packet with these selectors would get and says
// which rule, table and route decided it. ok is false if nothing matched.
func (p *Policy) Explain(src, dst netip.Addr, iif int, mark uint32) (d Decision, ok bool) {
	dst, src = dst.Unmap(), src.Unmap()
	var h *NextHop
	var c *compiled
	if dst.Is4() {
		var s uint32
		if src.Is4() {
			s = addr4(src)
		}
		h, c = p.lookup4(Flow4{Src: s, Dst: addr4(dst), IIf: iif, Mark: mark})
	} else {
		h, c = p.lookup6(Flow6{Src: src, Dst: dst, IIf: iif, Mark: mark})
	}
	if c == nil {
		return Decision{}, false
	}
	d = Decision{Rule: c.rule, NextHop: h}
	if c.table != nil {
		d.Table = c.tableID
		d.Route, _ = c.table.Get(dst)
	}
	return d, true
}
