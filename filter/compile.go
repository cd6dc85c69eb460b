package filter

import (
	"slices"
	"sort"
	"strings"
	"sync"
)

// MaxJumpDepth is how many jumps may be nested, as nft's jump stack.
const MaxJumpDepth = 16

// Env is what a ruleset is compiled against.
type Env struct {
	// Interfaces maps each port's name to the index the dataplane puts in
	// Packet.IIf and Packet.OIf. Names a rule uses must be here.
	Interfaces map[string]int
	// Log receives `log` statements' events, at most LogRate a second
	// (burst LogBurst) per log statement; the rest are counted in
	// LogEvent.Suppressed of the next one delivered. nil: logs are dropped.
	// It is called on the packet path: it must not block.
	Log      func(LogEvent)
	LogRate  int // default 10
	LogBurst int // default 10
}

// LogEvent is one `log` statement's packet.
type LogEvent struct {
	Prefix     string
	Level      string // "" when the rule named none
	Hook       Hook
	Chain      string
	Packet     Packet // a copy: the callback may keep it
	Suppressed uint64 // events of this statement dropped by the rate limit since the last one
}

// Program is a compiled ruleset: immutable but for its named sets'
// contents, which AddElements and DelElements swap atomically. Replace a
// running Program with an atomic pointer store; Eval is safe from any
// number of goroutines, each with its own Counters.
type Program struct {
	rs       *Ruleset
	hooks    [NumHooks][]*cchain // filter chains
	natHooks [NumHooks][]*cchain // nat chains (EvalNAT)
	nats     []*NATSpec
	chains   []*cchain
	sets     []*namedSet
	nslots   int           // counter statements
	slotOf   map[*Stmt]int // for the listing
	linear   bool          // evaluate every rule (the reference for tests)
	resetMu  sync.Mutex
	resetAt  []sum // sums at the last ResetCounters
	env      Env
}

type cchain struct {
	name   string
	table  string // "family name"
	fams   uint8  // famBit of the packet families the table sees
	base   *BaseChain
	decl   *Chain
	rules  []crule
	all    []int32 // every rule, for linear evaluation
	idx    chainIndex
	policy Action
}

const (
	fam4 = 1
	fam6 = 2
)

func famBit(f uint8) uint8 {
	switch f {
	case 4:
		return fam4
	case 6:
		return fam6
	}
	return 0
}

type crule struct {
	ops     []op
	verdict VerdictKind
	target  *cchain
	reject  RejectKind
	nat     int // VNAT: 1-based index in Program.nats
	// index facts, from the matches before the first statement
	protos *[4]uint64 // nil: any protocol
	needL4 bool
	dports []uint16 // nil: any
}

type opKind uint8

const (
	opMatch opKind = iota
	opCounter
	opLimit
	opLog
	opSetMark
	opSetCtMark
)

type op struct {
	kind opKind
	m    matcher
	slot int
	lim  *limiter
	log  *logger
	val  uint32
}

// Compile checks a parsed ruleset against env and builds its Program.
func Compile(rs *Ruleset, env Env) (*Program, error) {
	if env.LogRate <= 0 {
		env.LogRate = 10
	}
	if env.LogBurst <= 0 {
		env.LogBurst = 10
	}
	c := &compiler{env: env, p: &Program{rs: rs, env: env, slotOf: map[*Stmt]int{}}}
	if err := c.compile(); err != nil {
		return nil, err
	}
	return c.p, nil
}

// Load parses and compiles in one step.
func Load(file, src string, env Env) (*Program, error) {
	rs, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	return Compile(rs, env)
}

type compiler struct {
	env    Env
	p      *Program
	sets   map[string]*namedSet // "family table set"
	chains map[string]*cchain   // "family table chain"
	cur    *Chain               // the chain whose rules are being compiled
}

func (c *compiler) compile() error {
	c.sets = map[string]*namedSet{}
	c.chains = map[string]*cchain{}
	type based struct {
		ch  *cchain
		ord int
	}
	var bases []based
	for _, t := range c.p.rs.Tables {
		tname := t.Family.String() + " " + t.Name
		for _, s := range t.Sets {
			ns, err := c.set(tname, s)
			if err != nil {
				return err
			}
			c.sets[tname+" "+s.Name] = ns
			c.p.sets = append(c.p.sets, ns)
		}
		fams := uint8(fam4 | fam6)
		switch t.Family {
		case FamilyIP:
			fams = fam4
		case FamilyIP6:
			fams = fam6
		}
		for _, ch := range t.Chains {
			cc := &cchain{name: ch.Name, table: tname, fams: fams, base: ch.Base, decl: ch}
			c.chains[tname+" "+ch.Name] = cc
			c.p.chains = append(c.p.chains, cc)
			if ch.Base != nil {
				cc.policy = ActAccept
				if ch.Base.Policy == VDrop {
					cc.policy = ActDrop
				}
				bases = append(bases, based{cc, len(bases)})
			}
		}
	}
	for _, t := range c.p.rs.Tables {
		tname := t.Family.String() + " " + t.Name
		for _, ch := range t.Chains {
			c.cur = ch
			cc := c.chains[tname+" "+ch.Name]
			for _, r := range ch.Rules {
				cr, err := c.rule(t, tname, r)
				if err != nil {
					return err
				}
				cc.rules = append(cc.rules, cr)
				cc.all = append(cc.all, int32(len(cc.all)))
			}
		}
	}
	if err := c.checkJumps(); err != nil {
		return err
	}
	// Base chains at a hook run by priority; ties keep file order.
	sort.SliceStable(bases, func(i, j int) bool {
		return bases[i].ch.base.Priority < bases[j].ch.base.Priority
	})
	for _, b := range bases {
		h := b.ch.base.Hook
		if b.ch.base.Type == "nat" {
			c.p.natHooks[h] = append(c.p.natHooks[h], b.ch)
			continue
		}
		c.p.hooks[h] = append(c.p.hooks[h], b.ch)
	}
	for _, cc := range c.p.chains {
		cc.idx = buildIndex(cc.rules)
	}
	return nil
}

func (c *compiler) set(tname string, s *Set) (*namedSet, error) {
	ns := &namedSet{table: tname, name: s.Name, decl: s, field: setField(s.Type)}
	if len(s.Elems) > MaxSetElements {
		return nil, errAt(s.Pos, "set %s: %d elements exceeds %d", s.Name, len(s.Elems), MaxSetElements)
	}
	have := map[ival]bool{}
	for _, v := range s.Elems {
		if msg := ns.checkInterval(v); msg != "" {
			return nil, errAt(v.Pos, "set %s: %s", s.Name, msg)
		}
		iv := valueIval(v)
		if !have[iv] {
			have[iv] = true
			ns.elems = append(ns.elems, iv)
		}
	}
	ns.publish()
	return ns, nil
}

func (c *compiler) rule(t *Table, tname string, r *Rule) (crule, error) {
	cr := crule{verdict: VContinue}
	var fam uint8     // 4 or 6 once a match requires it
	var famWhy string // the match that did
	var protos []uint8
	protoWhy := ""
	sideEffect := false
	for _, e := range r.Exprs {
		if s := e.Stmt; s != nil {
			sideEffect = true
			o, err := c.stmt(tname, s)
			if err != nil {
				return cr, err
			}
			cr.ops = append(cr.ops, o)
			continue
		}
		m := e.Match
		fi := &fields[m.Field]
		// Family: the table's and the rule's other matches.
		if fi.fam != 0 {
			if t.Family == FamilyIP && fi.fam == 6 || t.Family == FamilyIP6 && fi.fam == 4 {
				return cr, errAt(m.Pos, "%s never matches in a table of family %s", fi.name, t.Family)
			}
			if fam != 0 && fam != fi.fam {
				return cr, errAt(m.Pos, "%s needs IPv%d but the rule matches IPv%d (%s)", fi.name, fi.fam, fam, famWhy)
			}
			fam, famWhy = fi.fam, fi.name
		}
		if m.Field == FNfproto && !m.Neg && m.Set == "" && len(m.Values) == 1 && m.Values[0].Lo == m.Values[0].Hi && m.Mask == 0 {
			nf := uint8(4)
			if m.Values[0].Lo == 10 {
				nf = 6
			}
			if fam != 0 && fam != nf {
				return cr, errAt(m.Pos, "meta nfproto ipv%d but the rule matches IPv%d (%s)", nf, fam, famWhy)
			}
		}
		// Protocol: what the field needs, and what protocol matches allow.
		need := fi.protos
		if (m.Field == FL4Proto || m.Field == FIPProtocol || m.Field == FIP6Nexthdr) && !m.Neg && m.Set == "" && m.Mask == 0 {
			need = nil
			for _, v := range m.Values {
				for x := v.Lo; x <= v.Hi && x <= 255; x++ {
					need = append(need, uint8(x))
				}
			}
		}
		if need != nil {
			if protos == nil {
				protos, protoWhy = slices.Clone(need), fi.name
			} else {
				both := intersect(protos, need)
				if len(both) == 0 {
					if fi.protos != nil {
						return cr, errAt(m.Pos, "%s needs protocol %s but rule matches %s", fi.name, protoList(need), protoList(protos))
					}
					return cr, errAt(m.Pos, "%s %s contradicts %s, which needs protocol %s", fi.name, protoList(need), protoWhy, protoList(protos))
				}
				protos = both
			}
		}
		cm, err := c.matcher(tname, m)
		if err != nil {
			return cr, err
		}
		cr.ops = append(cr.ops, op{kind: opMatch, m: cm})
		if !sideEffect {
			c.indexFacts(&cr, m, need)
		}
	}
	if v := r.Verdict; v != nil {
		cr.verdict = v.Kind
		cr.reject = v.Reject
		switch v.Kind {
		case VJump, VGoto:
			target := c.chains[tname+" "+v.Target]
			if target == nil {
				return cr, errAt(v.Pos, "%s to unknown chain %s", v.Kind, v.Target)
			}
			if target.base != nil {
				return cr, errAt(v.Pos, "%s to base chain %s: only regular chains can be jumped to", v.Kind, v.Target)
			}
			cr.target = target
		case VNAT:
			if err := c.checkNAT(c.cur, v, fam, t); err != nil {
				return cr, err
			}
			c.p.nats = append(c.p.nats, v.NAT)
			cr.nat = len(c.p.nats)
		case VReject:
			if c.cur.Base != nil && c.cur.Base.Type == "nat" {
				return cr, errAt(v.Pos, "reject in a nat chain: filter in a `type filter` chain")
			}
			switch v.RejectProto {
			case "tcp":
				if len(protos) != 1 || protos[0] != ProtoTCP {
					return cr, errAt(v.Pos, "reject with tcp reset needs a rule that matches tcp only")
				}
			case "icmp":
				if t.Family == FamilyIP6 || fam == 6 {
					return cr, errAt(v.Pos, "reject with icmp on IPv6: use icmpv6 or icmpx")
				}
			case "icmpv6":
				if t.Family == FamilyIP || fam == 4 {
					return cr, errAt(v.Pos, "reject with icmpv6 on IPv4: use icmp or icmpx")
				}
			}
		}
	}
	return cr, nil
}

func (c *compiler) indexFacts(cr *crule, m *Match, need []uint8) {
	if need != nil {
		var set [4]uint64
		for _, p := range need {
			set[p>>6] |= 1 << (p & 63)
		}
		if cr.protos != nil {
			for i := range set {
				set[i] &= cr.protos[i]
			}
		}
		cr.protos = &set
	}
	fi := &fields[m.Field]
	if fi.l4 {
		cr.needL4 = true
	}
	if (m.Field == FTCPDport || m.Field == FUDPDport || m.Field == FTHDport) && !m.Neg && m.Set == "" && m.Mask == 0 {
		var ports []uint16
		n := 0
		for _, v := range m.Values {
			n += int(v.Hi-v.Lo) + 1
		}
		if n > maxIndexedPorts {
			return // a wide range: evaluated, not indexed
		}
		for _, v := range m.Values {
			for x := v.Lo; x <= v.Hi; x++ {
				ports = append(ports, uint16(x))
			}
		}
		if cr.dports != nil {
			ports = intersect(ports, cr.dports)
		}
		if ports == nil {
			ports = []uint16{}
		}
		cr.dports = ports
	}
}

// maxIndexedPorts bounds how many ports one rule contributes to the
// index; a wider port range is tested by the rule itself.
const maxIndexedPorts = 256

func intersect[T comparable](a, b []T) []T {
	var out []T
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func protoList(ps []uint8) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = protoName(p)
	}
	if len(names) > 1 {
		return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	}
	return names[0]
}

func (c *compiler) stmt(tname string, s *Stmt) (op, error) {
	switch s.Kind {
	case StCounter:
		slot := c.p.nslots
		c.p.nslots++
		c.p.slotOf[s] = slot
		return op{kind: opCounter, slot: slot}, nil
	case StLimit:
		return op{kind: opLimit, lim: newLimiter(s)}, nil
	case StLog:
		return op{kind: opLog, log: &logger{
			prefix: s.Prefix, level: s.Level, fn: c.env.Log,
			lim: limiter{interval: 1e9 / int64(c.env.LogRate), tol: (int64(c.env.LogBurst) - 1) * (1e9 / int64(c.env.LogRate))},
		}}, nil
	case StMetaMarkSet:
		return op{kind: opSetMark, val: s.Value}, nil
	case StCtMarkSet:
		return op{kind: opSetCtMark, val: s.Value}, nil
	}
	return op{}, errAt(s.Pos, "unsupported statement")
}

// checkJumps refuses loops through jump and goto, and nesting deeper
// than the jump stack.
func (c *compiler) checkJumps() error {
	const (
		white = iota
		grey
		black
	)
	color := map[*cchain]int{}
	depth := map[*cchain]int{}
	var path []string
	var visit func(ch *cchain) error
	visit = func(ch *cchain) error {
		color[ch] = grey
		path = append(path, ch.name)
		d := 0
		for i := range ch.rules {
			r := &ch.rules[i]
			if r.target == nil {
				continue
			}
			v := ch.decl.Rules[i].Verdict
			switch color[r.target] {
			case grey:
				i := slices.Index(path, r.target.name)
				loop := append(slices.Clone(path[i:]), r.target.name)
				return errAt(v.Pos, "jump loop: %s", strings.Join(loop, " -> "))
			case white:
				if err := visit(r.target); err != nil {
					return err
				}
			}
			td := depth[r.target]
			if r.verdict == VJump {
				td++
			}
			if td > MaxJumpDepth {
				return errAt(v.Pos, "jump depth exceeds %d", MaxJumpDepth)
			}
			d = max(d, td)
		}
		depth[ch] = d
		color[ch] = black
		path = path[:len(path)-1]
		return nil
	}
	for _, ch := range c.p.chains {
		if color[ch] == white {
			if err := visit(ch); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *compiler) ifmask(m *Match, v Value) ([]uint64, error) {
	var mask []uint64
	set := func(i int) {
		for len(mask) <= i/64 {
			mask = append(mask, 0)
		}
		mask[i/64] |= 1 << (i % 64)
	}
	if pre, ok := strings.CutSuffix(v.Name, "*"); ok {
		n := 0
		for name, i := range c.env.Interfaces {
			if strings.HasPrefix(name, pre) {
				set(i)
				n++
			}
		}
		if n == 0 {
			return nil, errAt(v.Pos, "%s %q matches no interface", fields[m.Field].name, v.Name)
		}
		return mask, nil
	}
	i, ok := c.env.Interfaces[v.Name]
	if !ok {
		return nil, errAt(v.Pos, "unknown interface %q", v.Name)
	}
	if i < 0 || i > 4095 {
		return nil, errAt(v.Pos, "interface %q has index %d, outside 0..4095", v.Name, i)
	}
	set(i)
	return mask, nil
}

func (c *compiler) matcher(tname string, m *Match) (matcher, error) {
	fi := &fields[m.Field]
	cm := matcher{field: m.Field, neg: m.Neg, fam: fi.fam, l4: fi.l4, mask: ^uint32(0)}
	if fi.protos != nil {
		cm.protos = new([4]uint64)
		for _, p := range fi.protos {
			cm.protos[p>>6] |= 1 << (p & 63)
		}
	}
	if m.Mask != 0 {
		cm.mask = m.Mask
	}
	if m.Set != "" {
		ns := c.sets[tname+" "+m.Set]
		if ns == nil {
			return cm, errAt(m.SetPos, "unknown set @%s", m.Set)
		}
		if ns.decl.Type != fi.setType {
			return cm, errAt(m.SetPos, "set @%s has type %s but %s needs %s", m.Set, setTypeNames[ns.decl.Type], fi.name, setTypeNames[fi.setType])
		}
		cm.cmp = cmpNamed
		cm.named = ns
		return cm, nil
	}
	switch fi.kind {
	case vIfname, vIfindex:
		cm.cmp = cmpIfmask
		for _, v := range m.Values {
			mk, err := c.ifmask(m, v)
			if err != nil {
				return cm, err
			}
			for len(cm.ifs) < len(mk) {
				cm.ifs = append(cm.ifs, 0)
			}
			for i := range mk {
				cm.ifs[i] |= mk[i]
			}
		}
		return cm, nil
	case vAddr4, vAddr6:
		ivs := make([]ival, len(m.Values))
		for i, v := range m.Values {
			ivs[i] = valueIval(v)
		}
		if len(m.Values) == 1 && m.Values[0].Prefix.IsValid() {
			iv := ivs[0]
			if fi.kind == vAddr4 {
				cm.cmp = cmpPrefix4
				cm.lo = uint32(iv.lo.lo)
				cm.hi = ^(uint32(iv.lo.lo) ^ uint32(iv.hi.lo)) // network mask
			} else {
				cm.cmp = cmpPrefix6
				cm.net6 = iv.lo
				cm.mask6 = u128{^(iv.lo.hi ^ iv.hi.hi), ^(iv.lo.lo ^ iv.hi.lo)}
			}
			return cm, nil
		}
		cm.cmp = cmpSet
		cm.set = buildSetData(ivs, fi.kind == vAddr6)
		return cm, nil
	}
	if m.Form == FormFlags {
		cm.cmp = cmpFlags
		cm.lo = m.Values[0].Lo
		return cm, nil
	}
	if len(m.Values) == 1 {
		cm.cmp = cmpRange
		cm.lo, cm.hi = m.Values[0].Lo, m.Values[0].Hi
		return cm, nil
	}
	ivs := make([]ival, len(m.Values))
	for i, v := range m.Values {
		ivs[i] = valueIval(v)
	}
	cm.cmp = cmpSet
	cm.set = buildSetData(ivs, false)
	return cm, nil
}

// UsesConntrack reports whether any rule matches or sets connection
// tracking state (ct state, ct mark). A ruleset that does not is
// stateless, and the dataplane need not track connections for it.
func (p *Program) UsesConntrack() bool {
	for _, t := range p.rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, e := range r.Exprs {
					if m := e.Match; m != nil && (m.Field == FCtState || m.Field == FCtMark) {
						return true
					}
					if s := e.Stmt; s != nil && s.Kind == StCtMarkSet {
						return true
					}
				}
			}
		}
	}
	return false
}
