package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Parse reads a ruleset in the nft syntax documented in the package doc.
// file names the source in error positions. The result is only parsed:
// Compile checks names, protocols, loops and sizes.
func Parse(file, src string) (*Ruleset, error) {
	toks, err := lex(file, src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	rs, err := p.ruleset()
	if err != nil {
		return nil, err
	}
	return rs, nil
}

type parser struct {
	toks []token
	i    int
}

// bail carries a parse error up through the recursive descent; the
// entry point turns it back into an error.
type bail struct{ err *Error }

func (p *parser) fail(t token, format string, args ...any) {
	panic(bail{errAt(t.pos, format, args...)})
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) expect(k tokKind, what string) token {
	t := p.next()
	if t.kind != k {
		p.fail(t, "expected %s, got %s", what, t)
	}
	return t
}

func (p *parser) word(what string) token { return p.expect(tWord, what) }

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == s
}

// skipSeps skips newlines and semicolons between statements.
func (p *parser) skipSeps() {
	for k := p.peek().kind; k == tNewline || k == tSemi; k = p.peek().kind {
		p.next()
	}
}

func (p *parser) skipNewlines() {
	for p.peek().kind == tNewline {
		p.next()
	}
}

func (p *parser) atEnd() bool {
	switch p.peek().kind {
	case tNewline, tSemi, tRBrace, tEOF:
		return true
	}
	return false
}

// endStmt requires the end of a statement: a separator or the closing brace.
func (p *parser) endStmt() {
	if !p.atEnd() {
		t := p.peek()
		p.fail(t, "unexpected %s", t)
	}
}

func (p *parser) ruleset() (rs *Ruleset, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			rs, err = nil, b.err
		}
	}()
	rs = &Ruleset{}
	seen := map[string]*Table{}
	for {
		p.skipSeps()
		t := p.peek()
		switch {
		case t.kind == tEOF:
			return rs, nil
		case p.isWord("flush"):
			p.next()
			if w := p.word("'ruleset'"); w.text != "ruleset" {
				p.fail(w, "only `flush ruleset` is supported, got flush %s", w.text)
			}
			if len(rs.Tables) > 0 {
				p.fail(t, "flush ruleset must come before the tables")
			}
			rs.Flush = true
			p.endStmt()
		case p.isWord("table"):
			tb := p.table()
			key := tb.Family.String() + " " + tb.Name
			if prev := seen[key]; prev != nil {
				p.fail(token{pos: tb.Pos}, "table %s already defined at %d:%d", key, prev.Pos.Line, prev.Pos.Col)
			}
			seen[key] = tb
			rs.Tables = append(rs.Tables, tb)
		default:
			p.fail(t, "expected `table` or `flush ruleset`, got %s", t)
		}
	}
}

func (p *parser) table() *Table {
	kw := p.next()
	tb := &Table{Pos: kw.pos, Family: FamilyIP}
	name := p.word("table name")
	if p.peek().kind == tWord {
		switch name.text {
		case "ip":
			tb.Family = FamilyIP
		case "ip6":
			tb.Family = FamilyIP6
		case "inet":
			tb.Family = FamilyInet
		case "arp", "bridge", "netdev":
			p.fail(name, "table family %s is not supported (ip, ip6, inet)", name.text)
		default:
			p.fail(name, "unknown table family %q (ip, ip6, inet)", name.text)
		}
		name = p.next()
	}
	tb.Name = name.text
	p.expect(tLBrace, "'{'")
	names := map[string]Pos{}
	for {
		p.skipSeps()
		t := p.next()
		switch {
		case t.kind == tRBrace:
			return tb
		case t.kind == tWord && (t.text == "set" || t.text == "chain"):
			n := p.word(t.text + " name")
			if prev, ok := names[n.text]; ok {
				p.fail(n, "%s %s: name already used at %d:%d", t.text, n.text, prev.Line, prev.Col)
			}
			names[n.text] = n.pos
			if t.text == "set" {
				tb.Sets = append(tb.Sets, p.set(t, n.text))
			} else {
				tb.Chains = append(tb.Chains, p.chain(t, n.text))
			}
		case t.kind == tWord && (t.text == "map" || t.text == "flowtable" || t.text == "ct"):
			p.fail(t, "%s is not supported in tables", t.text)
		default:
			p.fail(t, "expected `set`, `chain` or '}', got %s", t)
		}
	}
}

func (p *parser) set(kw token, name string) *Set {
	s := &Set{Pos: kw.pos, Name: name}
	p.expect(tLBrace, "'{'")
	for {
		p.skipSeps()
		t := p.next()
		if t.kind == tRBrace {
			if s.Type == 0 {
				p.fail(kw, "set %s has no type", name)
			}
			return s
		}
		if t.kind != tWord {
			p.fail(t, "expected a set property, got %s", t)
		}
		switch t.text {
		case "type":
			w := p.word("set type")
			s.TypePos = w.pos
			switch w.text {
			case "ipv4_addr":
				s.Type = SetIPv4
			case "ipv6_addr":
				s.Type = SetIPv6
			case "inet_service":
				s.Type = SetService
			case "inet_proto":
				s.Type = SetProto
			case "mark":
				s.Type = SetMark
			default:
				p.fail(w, "set %s: unsupported type %q (ipv4_addr, ipv6_addr, inet_service, inet_proto, mark)", name, w.text)
			}
		case "flags":
			for {
				f := p.word("set flag")
				switch f.text {
				case "interval":
					s.Interval = true
				case "constant":
					s.Constant = true
				default:
					p.fail(f, "set %s: flag %q is not supported (interval, constant)", name, f.text)
				}
				if p.peek().kind != tComma {
					break
				}
				p.next()
			}
		case "elements":
			if s.Type == 0 {
				p.fail(t, "set %s: type must come before elements", name)
			}
			p.expect(tAssign, "'='")
			p.expect(tLBrace, "'{'")
			s.Elems = p.valueList(setField(s.Type), name)
		case "auto-merge":
		case "size":
			p.word("set size")
		case "comment":
			p.expect(tString, "comment string")
		case "policy":
			p.word("set policy")
		default:
			p.fail(t, "set %s: unknown property %q", name, t.text)
		}
		p.endStmt()
	}
}

// setField is the field whose values a set of type t holds.
func setField(t SetType) Field {
	switch t {
	case SetIPv4:
		return FIPSaddr
	case SetIPv6:
		return FIP6Saddr
	case SetService:
		return FTHDport
	case SetProto:
		return FL4Proto
	}
	return FMark
}

func (p *parser) chain(kw token, name string) *Chain {
	c := &Chain{Pos: kw.pos, Name: name}
	p.expect(tLBrace, "'{'")
	for {
		p.skipSeps()
		t := p.peek()
		switch {
		case t.kind == tRBrace:
			p.next()
			return c
		case p.isWord("type") && len(c.Rules) == 0 && c.Base == nil:
			p.next()
			c.Base = p.baseChain(t)
			p.endStmt()
		case p.isWord("policy"):
			p.next()
			if c.Base == nil {
				p.fail(t, "chain %s: policy needs a base chain (type ... hook ...)", name)
			}
			w := p.word("accept or drop")
			switch w.text {
			case "accept":
				c.Base.Policy = VAccept
			case "drop":
				c.Base.Policy = VDrop
			default:
				p.fail(w, "chain %s: policy must be accept or drop, got %q", name, w.text)
			}
			p.endStmt()
		case p.isWord("comment"):
			p.next()
			p.expect(tString, "comment string")
			p.endStmt()
		case t.kind == tEOF:
			p.fail(t, "chain %s: missing '}'", name)
		default:
			c.Rules = append(c.Rules, p.rule())
		}
	}
}

func (p *parser) baseChain(kw token) *BaseChain {
	b := &BaseChain{Pos: kw.pos, Policy: VAccept}
	ty := p.word("chain type")
	switch ty.text {
	case "filter":
	case "nat":
	case "route":
		p.fail(ty, "chain type route is not supported")
	default:
		p.fail(ty, "unknown chain type %q", ty.text)
	}
	b.Type = ty.text
	if w := p.word("`hook`"); w.text != "hook" {
		p.fail(w, "expected `hook`, got %q", w.text)
	}
	h := p.word("hook name")
	found := false
	for i, n := range hookNames {
		if n == h.text {
			b.Hook, found = Hook(i), true
		}
	}
	if !found {
		p.fail(h, "unknown hook %q (prerouting, input, forward, output, postrouting)", h.text)
	}
	if w := p.word("`priority`"); w.text != "priority" {
		p.fail(w, "expected `priority`, got %q", w.text)
	}
	b.Priority = p.priority()
	return b
}

// priority reads a number or a standard name with an optional offset:
// 0, -300, filter, filter + 10, mangle - 5, dstnat-10.
func (p *parser) priority() int {
	w := p.word("priority")
	if n, err := strconv.Atoi(w.text); err == nil {
		return n
	}
	base, rest, found := w.text, "", false
	if i := strings.IndexByte(w.text, '-'); i > 0 {
		base, rest = w.text[:i], w.text[i:]
	}
	v := 0
	for _, pn := range priorityNames {
		if pn.s == base {
			v, found = pn.v, true
		}
	}
	if !found {
		p.fail(w, "unknown priority %q (a number or raw, mangle, dstnat, filter, security, srcnat)", w.text)
	}
	if rest != "" {
		n, err := strconv.Atoi(rest)
		if err != nil {
			p.fail(w, "bad priority offset %q", rest)
		}
		return v + n
	}
	sign := 0
	if p.peek().kind == tPlus {
		sign = 1
	} else if p.isWord("-") {
		sign = -1
	}
	if sign != 0 {
		p.next()
		nt := p.word("priority offset")
		n, err := strconv.Atoi(nt.text)
		if err != nil || n < 0 {
			p.fail(nt, "bad priority offset %q", nt.text)
		}
		v += sign * n
	}
	return v
}

func (p *parser) rule() *Rule {
	r := &Rule{Pos: p.peek().pos}
	for !p.atEnd() {
		t := p.peek()
		if r.Verdict != nil {
			p.fail(t, "%s after the verdict %s: the verdict ends the rule", t, r.Verdict.Kind)
		}
		if t.kind != tWord {
			p.fail(t, "expected a match, statement or verdict, got %s", t)
		}
		switch t.text {
		case "accept", "drop", "reject", "jump", "goto", "return", "continue":
			r.Verdict = p.verdict()
			continue
		case "masquerade", "snat", "dnat":
			r.Verdict = p.natVerdict()
			continue
		case "counter", "limit", "log":
			r.Exprs = append(r.Exprs, Expr{Stmt: p.stmt()})
			continue
		}
		// meta mark set, mark set, ct mark set
		if n := p.setStmtLen(); n > 0 {
			r.Exprs = append(r.Exprs, Expr{Stmt: p.markSet(n)})
			continue
		}
		r.Exprs = append(r.Exprs, Expr{Match: p.match()})
	}
	return r
}

func (p *parser) setStmtLen() int {
	a, b, c := p.peek(), p.peekAt(1), p.peekAt(2)
	if a.kind == tWord && a.text == "mark" && b.kind == tWord && b.text == "set" {
		return 1
	}
	if a.kind == tWord && (a.text == "meta" || a.text == "ct") && b.kind == tWord && b.text == "mark" &&
		c.kind == tWord && c.text == "set" {
		return 2
	}
	return 0
}

func (p *parser) markSet(n int) *Stmt {
	t := p.next()
	s := &Stmt{Pos: t.pos, Kind: StMetaMarkSet}
	if t.text == "ct" {
		s.Kind = StCtMarkSet
	}
	for k := 1; k <= n; k++ {
		p.next()
	}
	w := p.word("mark value")
	v, ok := parseUint(w.text, ^uint32(0))
	if !ok {
		p.fail(w, "bad mark value %q", w.text)
	}
	s.Value = v
	return s
}

func (p *parser) stmt() *Stmt {
	t := p.next()
	switch t.text {
	case "counter":
		s := &Stmt{Pos: t.pos, Kind: StCounter}
		// A pasted listing carries the counts; they are not restored.
		for p.isWord("packets") || p.isWord("bytes") {
			k := p.next()
			if w := p.word(k.text + " count"); !isDigits(w.text) {
				p.fail(w, "bad %s count %q", k.text, w.text)
			}
		}
		return s
	case "limit":
		return p.limit(t)
	}
	s := &Stmt{Pos: t.pos, Kind: StLog}
	for {
		switch {
		case p.isWord("prefix"):
			p.next()
			s.Prefix = p.expect(tString, "log prefix string").text
		case p.isWord("level"):
			p.next()
			w := p.word("log level")
			ok := false
			for _, l := range logLevels {
				ok = ok || l == w.text
			}
			if !ok {
				p.fail(w, "unknown log level %q", w.text)
			}
			s.Level = w.text
		default:
			return s
		}
	}
}

func (p *parser) limit(t token) *Stmt {
	s := &Stmt{Pos: t.pos, Kind: StLimit}
	if w := p.word("`rate`"); w.text != "rate" {
		p.fail(w, "expected `rate`, got %q", w.text)
	}
	if p.isWord("over") {
		p.next()
		s.Over = true
	}
	w := p.word("rate")
	num, unit, ok := strings.Cut(w.text, "/")
	if !ok {
		if p.isWord("/") {
			p.next()
		}
		unit = p.word("rate unit").text
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		p.fail(w, "bad rate %q: a positive number of packets", num)
	}
	unit = strings.TrimPrefix(unit, "/")
	switch unit {
	case "second", "minute", "hour", "day":
	default:
		p.fail(w, "bad rate unit %q (second, minute, hour, day; byte rates are not supported)", unit)
	}
	s.Rate, s.Unit = n, unit
	if p.isWord("burst") {
		p.next()
		b := p.word("burst size")
		n, err := strconv.ParseUint(b.text, 10, 32)
		if err != nil || n == 0 {
			p.fail(b, "bad burst %q", b.text)
		}
		if u := p.word("`packets`"); u.text != "packets" {
			p.fail(u, "burst must be in packets, got %q", u.text)
		}
		s.Burst = uint32(n)
	}
	return s
}

func (p *parser) verdict() *Verdict {
	t := p.next()
	v := &Verdict{Pos: t.pos}
	switch t.text {
	case "accept":
		v.Kind = VAccept
	case "drop":
		v.Kind = VDrop
	case "return":
		v.Kind = VReturn
	case "continue":
		v.Kind = VContinue
	case "jump", "goto":
		v.Kind = VJump
		if t.text == "goto" {
			v.Kind = VGoto
		}
		v.Target = p.word("chain name").text
	case "reject":
		v.Kind = VReject
		if !p.isWord("with") {
			return v
		}
		p.next()
		pw := p.word("icmp, icmpv6, icmpx or tcp")
		v.RejectProto = pw.text
		if pw.text == "tcp" {
			if w := p.word("`reset`"); w.text != "reset" {
				p.fail(w, "expected `reset`, got %q", w.text)
			}
			v.Reject, v.RejectName = RejectTCPReset, "reset"
			return v
		}
		if p.isWord("type") {
			p.next()
		}
		w := p.word("reject type")
		v.RejectName = w.text
		var kinds map[string]RejectKind
		switch pw.text {
		case "icmp":
			kinds = map[string]RejectKind{"port-unreachable": RejectPortUnreachable, "host-unreachable": RejectHostUnreachable,
				"admin-prohibited": RejectAdminProhibited, "net-unreachable": RejectNetUnreachable}
		case "icmpv6":
			kinds = map[string]RejectKind{"port-unreachable": RejectPortUnreachable, "addr-unreachable": RejectHostUnreachable,
				"admin-prohibited": RejectAdminProhibited, "no-route": RejectNetUnreachable}
		case "icmpx":
			kinds = map[string]RejectKind{"port-unreachable": RejectPortUnreachable, "host-unreachable": RejectHostUnreachable,
				"admin-prohibited": RejectAdminProhibited, "no-route": RejectNetUnreachable}
		default:
			p.fail(pw, "reject with %q: expected icmp, icmpv6, icmpx or tcp", pw.text)
		}
		k, ok := kinds[w.text]
		if !ok {
			p.fail(w, "unsupported reject type %s %q", pw.text, w.text)
		}
		v.Reject = k
	}
	return v
}

func (p *parser) match() *Match {
	t := p.next()
	key := t.text
	if n := p.peek(); n.kind == tWord {
		if _, ok := fieldWords[t.text+" "+n.text]; ok {
			key = t.text + " " + n.text
			p.next()
		}
	}
	f, ok := fieldWords[key]
	if !ok {
		if n := p.peek(); n.kind == tWord && (t.text == "ip" || t.text == "ip6" || t.text == "tcp" || t.text == "udp" ||
			t.text == "th" || t.text == "icmp" || t.text == "icmpv6" || t.text == "ct" || t.text == "meta") {
			p.fail(n, "unsupported match %s %s", t.text, n.text)
		}
		p.fail(t, "unknown expression %q", t.text)
	}
	fi := &fields[f]
	m := &Match{Pos: t.pos, Field: f}
	op := p.peek()
	switch op.kind {
	case tEq:
		p.next()
	case tNe:
		p.next()
		m.Neg = true
	case tLt, tGt, tLe, tGe:
		p.next()
		if fi.kind != vInt {
			p.fail(op, "%s: %s needs a number", fi.name, op)
		}
		w := p.word("value")
		v, ok := p.intValue(fi, w.text)
		if !ok {
			p.fail(w, "%s: bad value %q", fi.name, w.text)
		}
		val := Value{Pos: w.pos, Lo: 0, Hi: fi.max}
		switch op.kind {
		case tLt:
			if v == 0 {
				p.fail(w, "%s < 0 never matches", fi.name)
			}
			val.Hi = v - 1
		case tLe:
			val.Hi = v
		case tGt:
			if v == fi.max {
				p.fail(w, "%s > %d never matches", fi.name, v)
			}
			val.Lo = v + 1
		case tGe:
			val.Lo = v
		}
		m.Values = []Value{val}
		return m
	case tAmp:
		p.next()
		if fi.kind != vInt {
			p.fail(op, "%s cannot be masked", fi.name)
		}
		m.Mask = p.flagExpr(fi, true)
		if m.Mask == 0 {
			p.fail(op, "%s: mask 0 compares nothing", fi.name)
		}
		switch p.peek().kind {
		case tEq:
			p.next()
		case tNe:
			p.next()
			m.Neg = true
		}
	}
	// nft's short form of a masked compare: tcp flags syn / syn,ack.
	if fi.flags && m.Mask == 0 && !m.Neg && op.kind != tEq && p.peek().kind == tWord {
		if w := p.peek(); strings.Contains(w.text, "/") || p.peekAt(1).kind == tWord && p.peekAt(1).text == "/" {
			val := p.flagsOverMask(fi, m)
			m.Values = []Value{val}
			return m
		}
	}
	switch p.peek().kind {
	case tSetRef:
		st := p.next()
		if fi.setType == 0 {
			p.fail(st, "%s cannot look up a named set", fi.name)
		}
		m.Set, m.SetPos = st.text, st.pos
		return m
	case tLBrace:
		p.next()
		m.Anon = true
		m.Values = p.valueList(f, "")
		if len(m.Values) == 0 {
			p.fail(op, "%s: empty set", fi.name)
		}
		return m
	}
	if fi.flags && m.Mask == 0 && op.kind != tEq {
		// A bare flag list (ct state established,related): any bit.
		m.Form = FormFlags
		vt := p.peek()
		bits := p.flagExpr(fi, false)
		for p.peek().kind == tComma {
			p.next()
			bits |= p.flagExpr(fi, false)
		}
		m.Values = []Value{{Pos: vt.pos, Lo: bits, Hi: bits}}
		return m
	}
	if fi.flags {
		vt := p.peek()
		v := p.flagExpr(fi, false)
		m.Values = []Value{{Pos: vt.pos, Lo: v, Hi: v}}
		return m
	}
	m.Values = []Value{p.value(f)}
	return m
}

// flagsOverMask reads `v / m`: the bits m of the field equal v.
func (p *parser) flagsOverMask(fi *fieldInfo, m *Match) Value {
	w := p.peek()
	var left, right string
	if i := strings.IndexByte(w.text, '/'); i >= 0 {
		p.next()
		left, right = w.text[:i], w.text[i+1:]
	} else {
		left = p.next().text
		p.next() // the "/"
	}
	val := uint32(0)
	for _, s := range strings.Split(left, ",") {
		v, ok := p.intValue(fi, s)
		if !ok {
			p.fail(w, "%s: unknown flag %q", fi.name, s)
		}
		val |= v
	}
	for p.peek().kind == tComma && right == "" {
		p.next()
	}
	// The mask is a comma list, possibly split by the lexer at commas.
	mask := uint32(0)
	parts := []string{}
	if right != "" {
		parts = append(parts, right)
	} else {
		parts = append(parts, p.word("flag mask").text)
	}
	for p.peek().kind == tComma {
		p.next()
		parts = append(parts, p.word("flag").text)
	}
	for _, s := range parts {
		v, ok := p.intValue(fi, s)
		if !ok {
			p.fail(w, "%s: unknown flag %q", fi.name, s)
		}
		mask |= v
	}
	if val&^mask != 0 {
		p.fail(w, "%s: value %s has bits outside the mask", fi.name, left)
	}
	m.Mask = mask
	return Value{Pos: w.pos, Lo: val, Hi: val}
}

// flagExpr reads a | combination of names or numbers, parenthesized
// when paren (the mask of `tcp flags & (syn | ack)`), or one value.
func (p *parser) flagExpr(fi *fieldInfo, paren bool) uint32 {
	open := paren && p.peek().kind == tLParen
	if open {
		p.next()
	}
	v := uint32(0)
	for {
		w := p.word("value")
		x, ok := p.intValue(fi, w.text)
		if !ok {
			p.fail(w, "%s: unknown value %q", fi.name, w.text)
		}
		v |= x
		if p.peek().kind != tPipe {
			break
		}
		p.next()
	}
	if open {
		p.expect(tRParen, "')'")
	}
	return v
}

// valueList reads the elements of { ... } after the '{', up to and
// including the '}'. Newlines may separate elements.
func (p *parser) valueList(f Field, set string) []Value {
	var vs []Value
	for {
		p.skipNewlines()
		if p.peek().kind == tRBrace {
			p.next()
			return vs
		}
		if fields[f].flags {
			t := p.peek()
			v := p.flagExpr(&fields[f], false)
			vs = append(vs, Value{Pos: t.pos, Lo: v, Hi: v})
		} else {
			vs = append(vs, p.value(f))
		}
		if len(vs) > MaxSetElements {
			p.fail(token{pos: vs[len(vs)-1].Pos}, "set %s: %d elements exceeds %d", set, len(vs), MaxSetElements)
		}
		p.skipNewlines()
		switch t := p.next(); t.kind {
		case tComma:
		case tRBrace:
			return vs
		default:
			p.fail(t, "expected ',' or '}', got %s", t)
		}
	}
}

// value reads one literal for field f.
func (p *parser) value(f Field) Value {
	fi := &fields[f]
	t := p.next()
	if t.kind != tWord && !(t.kind == tString && (fi.kind == vIfname || fi.kind == vIfindex)) {
		p.fail(t, "%s: expected a value, got %s", fi.name, t)
	}
	v, err := parseValue(f, t.text)
	if err != "" {
		p.fail(t, "%s", err)
	}
	v.Pos = t.pos
	// A range written with spaces: 1000 - 2000.
	if fi.kind == vInt && p.isWord("-") {
		p.next()
		h := p.word("range end")
		hv, err := parseValue(f, h.text)
		if err != "" || hv.Lo != hv.Hi {
			p.fail(h, "%s: bad range end %q", fi.name, h.text)
		}
		if hv.Hi < v.Lo {
			p.fail(h, "%s: range %s-%s is empty", fi.name, t.text, h.text)
		}
		v.Hi = hv.Hi
	}
	return v
}

func (p *parser) intValue(fi *fieldInfo, s string) (uint32, bool) {
	if v, ok := lookupName(fi.names, s); ok {
		return v, true
	}
	return parseUint(s, fi.max)
}

// parseValue parses one element for field f; the error is a message
// without position ("" when fine). AddElements uses it too.
func parseValue(f Field, s string) (Value, string) {
	fi := &fields[f]
	switch fi.kind {
	case vIfname, vIfindex:
		if s == "" {
			return Value{}, fi.name + ": empty interface name"
		}
		if len(s) > 15 {
			return Value{}, fmt.Sprintf("%s: interface name %q is longer than 15 bytes", fi.name, s)
		}
		if i := strings.IndexByte(s, '*'); i >= 0 && (i != len(s)-1 || fi.kind == vIfindex) {
			return Value{}, fmt.Sprintf("%s: %q: a wildcard is only allowed at the end, with iifname and oifname", fi.name, s)
		}
		return Value{Name: s}, ""
	case vAddr4, vAddr6:
		return parseAddrValue(fi, s)
	}
	if v, ok := lookupName(fi.names, s); ok {
		return Value{Lo: v, Hi: v}, ""
	}
	if v, ok := parseUint(s, fi.max); ok {
		return Value{Lo: v, Hi: v}, ""
	}
	// A range: try each dash, since names contain dashes too.
	for i := 1; i < len(s)-1; i++ {
		if s[i] != '-' {
			continue
		}
		lo, ok1 := lookupOrUint(fi, s[:i])
		hi, ok2 := lookupOrUint(fi, s[i+1:])
		if ok1 && ok2 {
			if hi < lo {
				return Value{}, fmt.Sprintf("%s: range %s is empty", fi.name, s)
			}
			return Value{Lo: lo, Hi: hi}, ""
		}
	}
	if fi.names != nil {
		return Value{}, fmt.Sprintf("%s: unknown value %q", fi.name, s)
	}
	return Value{}, fmt.Sprintf("%s: bad value %q (a number up to %d)", fi.name, s, fi.max)
}

func lookupOrUint(fi *fieldInfo, s string) (uint32, bool) {
	if v, ok := lookupName(fi.names, s); ok {
		return v, true
	}
	return parseUint(s, fi.max)
}

func parseAddrValue(fi *fieldInfo, s string) (Value, string) {
	want4 := fi.kind == vAddr4
	famOK := func(a netip.Addr) bool { return a.Is4() == want4 && !a.Is4In6() && a.Zone() == "" }
	fam := "IPv6"
	if want4 {
		fam = "IPv4"
	}
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return Value{}, fmt.Sprintf("%s: bad prefix %q", fi.name, s)
		}
		if !famOK(pf.Addr()) {
			return Value{}, fmt.Sprintf("%s needs an %s prefix, got %s", fi.name, fam, s)
		}
		return Value{Prefix: pf.Masked()}, ""
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(lo)
		b, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil {
			return Value{}, fmt.Sprintf("%s: bad address range %q", fi.name, s)
		}
		if !famOK(a) || !famOK(b) {
			return Value{}, fmt.Sprintf("%s needs %s addresses, got %s", fi.name, fam, s)
		}
		if b.Less(a) {
			return Value{}, fmt.Sprintf("%s: range %s is empty", fi.name, s)
		}
		return Value{ALo: a, AHi: b}, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Value{}, fmt.Sprintf("%s: bad address %q", fi.name, s)
	}
	if !famOK(a) {
		return Value{}, fmt.Sprintf("%s needs an %s address, got %s", fi.name, fam, s)
	}
	return Value{Prefix: netip.PrefixFrom(a, a.BitLen())}, ""
}

// parseUint reads decimal or 0x hex up to max.
func parseUint(s string, max uint32) (uint32, bool) {
	base := 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s, base = s[2:], 16
	}
	if s == "" || !isHexOrDigits(s, base) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil || v > uint64(max) {
		return 0, false
	}
	return uint32(v), true
}

func isHexOrDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			continue
		}
		return false
	}
	return true
}

func isDigits(s string) bool { return s != "" && isHexOrDigits(s, 10) }

func itoa(n int) string { return strconv.Itoa(n) }
