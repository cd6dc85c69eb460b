package filter

import (
	"fmt"
	"strings"
)

// Listing prints the ruleset as `nft list ruleset` does, with each
// counter statement's packets and bytes summed over the given workers'
// Counters (since the last ResetCounters) and each named set's current
// elements. The text parses back to the same program.
func (p *Program) Listing(counters ...*Counters) string {
	sums := p.sums(counters)
	p.resetMu.Lock()
	for i := range sums {
		if i < len(p.resetAt) {
			sums[i].pkts -= p.resetAt[i].pkts
			sums[i].bytes -= p.resetAt[i].bytes
		}
	}
	p.resetMu.Unlock()
	var b strings.Builder
	if p.rs.Flush {
		b.WriteString("flush ruleset\n")
	}
	setIdx := 0
	for ti, t := range p.rs.Tables {
		if ti > 0 || p.rs.Flush {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "table %s %s {\n", t.Family, t.Name)
		first := true
		for range t.Sets {
			if !first {
				b.WriteString("\n")
			}
			first = false
			p.writeSet(&b, p.sets[setIdx])
			setIdx++
		}
		for _, c := range t.Chains {
			if !first {
				b.WriteString("\n")
			}
			first = false
			fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
			if bc := c.Base; bc != nil {
				fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n", bc.Type, bc.Hook, priorityString(bc.Priority), bc.Policy)
			}
			for _, r := range c.Rules {
				b.WriteString("\t\t")
				b.WriteString(p.ruleString(r, sums))
				b.WriteString("\n")
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

type sum struct{ pkts, bytes uint64 }

func (p *Program) sums(counters []*Counters) []sum {
	s := make([]sum, p.nslots)
	for _, c := range counters {
		if c == nil {
			continue
		}
		for i := range s {
			s[i].pkts += c.c[i].pkts.Load()
			s[i].bytes += c.c[i].bytes.Load()
		}
	}
	return s
}

// ResetCounters zeroes the counters the listing shows. The workers'
// Counters are not written (they have one writer each): the current sums
// become the listing's zero.
func (p *Program) ResetCounters(counters ...*Counters) {
	s := p.sums(counters)
	p.resetMu.Lock()
	p.resetAt = s
	p.resetMu.Unlock()
}

// CounterValues returns the summed packets and bytes of every counter
// statement in file order, as the listing shows them.
func (p *Program) CounterValues(counters ...*Counters) (pkts, bytes []uint64) {
	s := p.sums(counters)
	p.resetMu.Lock()
	defer p.resetMu.Unlock()
	for i, x := range s {
		if i < len(p.resetAt) {
			x.pkts -= p.resetAt[i].pkts
			x.bytes -= p.resetAt[i].bytes
		}
		pkts = append(pkts, x.pkts)
		bytes = append(bytes, x.bytes)
	}
	return pkts, bytes
}

func (p *Program) writeSet(b *strings.Builder, s *namedSet) {
	fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n", s.name, setTypeNames[s.decl.Type])
	var flags []string
	if s.decl.Constant {
		flags = append(flags, "constant")
	}
	if s.decl.Interval {
		flags = append(flags, "interval")
	}
	if len(flags) > 0 {
		fmt.Fprintf(b, "\t\tflags %s\n", strings.Join(flags, ","))
	}
	s.mu.Lock()
	if len(s.elems) > 0 {
		b.WriteString("\t\telements = { ")
		for i, x := range s.elems {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(elemString(s.decl.Type, x))
		}
		b.WriteString(" }\n")
	}
	s.mu.Unlock()
	b.WriteString("\t}\n")
}

func priorityString(v int) string {
	for _, pn := range priorityNames {
		if pn.v == v {
			return pn.s
		}
	}
	return itoa(v)
}

func (p *Program) ruleString(r *Rule, sums []sum) string {
	var parts []string
	for _, e := range r.Exprs {
		if e.Match != nil {
			parts = append(parts, matchString(e.Match))
			continue
		}
		s := e.Stmt
		switch s.Kind {
		case StCounter:
			var c sum
			if slot, ok := p.slotOf[s]; ok && slot < len(sums) {
				c = sums[slot]
			}
			parts = append(parts, fmt.Sprintf("counter packets %d bytes %d", c.pkts, c.bytes))
		case StLimit:
			x := "limit rate "
			if s.Over {
				x += "over "
			}
			x += fmt.Sprintf("%d/%s", s.Rate, s.Unit)
			if s.Burst != 0 {
				x += fmt.Sprintf(" burst %d packets", s.Burst)
			}
			parts = append(parts, x)
		case StLog:
			x := "log"
			if s.Prefix != "" {
				x += fmt.Sprintf(" prefix %q", s.Prefix)
			}
			if s.Level != "" {
				x += " level " + s.Level
			}
			parts = append(parts, x)
		case StMetaMarkSet:
			parts = append(parts, fmt.Sprintf("meta mark set 0x%08x", s.Value))
		case StCtMarkSet:
			parts = append(parts, fmt.Sprintf("ct mark set 0x%08x", s.Value))
		}
	}
	if v := r.Verdict; v != nil {
		switch v.Kind {
		case VJump, VGoto:
			parts = append(parts, v.Kind.String()+" "+v.Target)
		case VNAT:
			parts = append(parts, v.NAT.String())
		case VReject:
			switch v.RejectProto {
			case "":
				parts = append(parts, "reject")
			case "tcp":
				parts = append(parts, "reject with tcp reset")
			default:
				parts = append(parts, "reject with "+v.RejectProto+" type "+v.RejectName)
			}
		default:
			parts = append(parts, v.Kind.String())
		}
	}
	return strings.Join(parts, " ")
}

func matchString(m *Match) string {
	fi := &fields[m.Field]
	var b strings.Builder
	b.WriteString(fi.name)
	if m.Mask != 0 {
		b.WriteString(" & ")
		if fi.flags && m.Mask&(m.Mask-1) != 0 {
			b.WriteString("(" + flagList(fi.names, m.Mask, " | ") + ")")
		} else {
			b.WriteString(intVal(fi, m.Mask))
		}
		if m.Neg {
			b.WriteString(" != ")
		} else {
			b.WriteString(" == ")
		}
	} else if m.Neg {
		b.WriteString(" != ")
	} else if fi.flags && m.Form == FormIn {
		b.WriteString(" == ")
	} else {
		b.WriteString(" ")
	}
	switch {
	case m.Set != "":
		b.WriteString("@" + m.Set)
	case m.Form == FormFlags:
		b.WriteString(flagList(fi.names, m.Values[0].Lo, ","))
	case m.Anon:
		b.WriteString("{ ")
		for i, v := range m.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(valueString(fi, v))
		}
		b.WriteString(" }")
	default:
		b.WriteString(valueString(fi, m.Values[0]))
	}
	return b.String()
}

func valueString(fi *fieldInfo, v Value) string {
	switch fi.kind {
	case vIfname, vIfindex:
		return fmt.Sprintf("%q", v.Name)
	case vAddr4, vAddr6:
		if v.Prefix.IsValid() {
			if v.Prefix.Bits() == v.Prefix.Addr().BitLen() {
				return v.Prefix.Addr().String()
			}
			return v.Prefix.String()
		}
		return v.ALo.String() + "-" + v.AHi.String()
	}
	if fi.flags {
		return flagList(fi.names, v.Lo, "|")
	}
	return intRange(fi, v.Lo, v.Hi)
}

func intRange(fi *fieldInfo, lo, hi uint32) string {
	if lo == hi {
		return intVal(fi, lo)
	}
	return intVal(fi, lo) + "-" + intVal(fi, hi)
}

func intVal(fi *fieldInfo, v uint32) string {
	if s, ok := nameOf(fi.names, v); ok {
		return s
	}
	if fi.hex {
		return fmt.Sprintf("0x%08x", v)
	}
	return fmt.Sprint(v)
}

// RuleCount is the number of rules in every chain of every table (filter
// and nat), as the listing shows them.
func (p *Program) RuleCount() int {
	n := 0
	for _, c := range p.chains {
		n += len(c.rules)
	}
	return n
}
