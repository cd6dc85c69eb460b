package filter

import (
	"net/netip"
	"strings"
)

// naive evaluates the syntax tree directly, one rule after another, with
// none of the compiled matchers or indexes: the reference the compiled
// Program is checked against. It knows no limits or logs (the random
// rulesets have none) and reads named sets from the declarations.
type naive struct {
	rs  *Ruleset
	env Env
}

func (n *naive) eval(h Hook, p *Packet) Result {
	var res Result
	type base struct {
		t *Table
		c *Chain
	}
	var bases []base
	for _, t := range n.rs.Tables {
		if t.Family == FamilyIP && p.Family != 4 || t.Family == FamilyIP6 && p.Family != 6 {
			continue
		}
		for _, c := range t.Chains {
			if c.Base != nil && c.Base.Hook == h {
				bases = append(bases, base{t, c})
			}
		}
	}
	// Insertion sort by priority keeps file order on ties.
	for i := 1; i < len(bases); i++ {
		for j := i; j > 0 && bases[j].c.Base.Priority < bases[j-1].c.Base.Priority; j-- {
			bases[j], bases[j-1] = bases[j-1], bases[j]
		}
	}
	for _, b := range bases {
		v, decided := n.chain(b.t, b.c, p, &res)
		if !decided {
			v = b.c.Base.Policy
		}
		switch v {
		case VDrop:
			res.Action = ActDrop
			return res
		case VReject:
			res.Action = ActReject
			return res
		}
	}
	return res
}

func (n *naive) chain(t *Table, c *Chain, p *Packet, res *Result) (VerdictKind, bool) {
	for _, r := range c.Rules {
		ok := true
		for _, e := range r.Exprs {
			if e.Match != nil {
				if !n.match(t, e.Match, p) {
					ok = false
					break
				}
				continue
			}
			switch e.Stmt.Kind {
			case StMetaMarkSet:
				p.Mark = e.Stmt.Value
				res.SetMark, res.Mark = true, e.Stmt.Value
			case StCtMarkSet:
				p.CtMark = e.Stmt.Value
				res.SetCtMark, res.CtMark = true, e.Stmt.Value
			}
		}
		if !ok || r.Verdict == nil {
			continue
		}
		v := r.Verdict
		switch v.Kind {
		case VAccept, VDrop:
			return v.Kind, true
		case VReject:
			res.Reject = v.Reject
			return v.Kind, true
		case VJump:
			if k, d := n.chain(t, n.find(t, v.Target), p, res); d {
				return k, true
			}
		case VGoto:
			return n.chain(t, n.find(t, v.Target), p, res)
		case VReturn:
			return 0, false
		}
	}
	return 0, false
}

func (n *naive) find(t *Table, name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	panic("no chain " + name)
}

func (n *naive) match(t *Table, m *Match, p *Packet) bool {
	fi := &fields[m.Field]
	if fi.fam != 0 && p.Family != fi.fam {
		return false
	}
	if fi.protos != nil {
		found := false
		for _, x := range fi.protos {
			found = found || x == p.L4Proto
		}
		if !found {
			return false
		}
	}
	if fi.l4 && !p.HasPorts {
		return false
	}
	vals := m.Values
	if m.Set != "" {
		for _, s := range t.Sets {
			if s.Name == m.Set {
				vals = s.Elems
			}
		}
	}
	in := false
	switch fi.kind {
	case vAddr4, vAddr6:
		b := p.Src
		if m.Field == FIPDaddr || m.Field == FIP6Daddr {
			b = p.Dst
		}
		a := netip.AddrFrom16(b)
		if fi.kind == vAddr4 {
			a = a.Unmap()
		}
		for _, v := range vals {
			if v.Prefix.IsValid() && v.Prefix.Contains(a) || v.ALo.IsValid() && v.ALo.Compare(a) <= 0 && a.Compare(v.AHi) <= 0 {
				in = true
			}
		}
	case vIfname, vIfindex:
		idx := p.IIf
		if m.Field == FOifname || m.Field == FOif {
			idx = p.OIf
		}
		name := ""
		for k, i := range n.env.Interfaces {
			if i == idx {
				name = k
			}
		}
		for _, v := range vals {
			if pre, ok := strings.CutSuffix(v.Name, "*"); ok && name != "" && strings.HasPrefix(name, pre) || name != "" && name == v.Name {
				in = true
			}
		}
	default:
		var x uint32
		switch m.Field {
		case FIPProtocol, FIP6Nexthdr, FL4Proto:
			x = uint32(p.L4Proto)
		case FNfproto:
			x = 2
			if p.Family == 6 {
				x = 10
			}
		case FTCPSport, FUDPSport, FTHSport:
			x = uint32(p.SrcPort)
		case FTCPDport, FUDPDport, FTHDport:
			x = uint32(p.DstPort)
		case FICMPType, FICMPv6Type:
			x = uint32(p.ICMPType)
		case FICMPCode, FICMPv6Code:
			x = uint32(p.ICMPCode)
		case FTCPFlags:
			x = uint32(p.TCPFlags)
		case FCtState:
			x = uint32(p.CtState)
		case FCtMark:
			x = p.CtMark
		case FMark:
			x = p.Mark
		case FMetaLength, FIPLength:
			x = p.Length
		case FIPDscp, FIP6Dscp:
			x = uint32(p.DSCP)
		}
		if m.Mask != 0 {
			x &= m.Mask
		}
		if m.Form == FormFlags {
			in = x&vals[0].Lo != 0
		} else {
			for _, v := range vals {
				in = in || v.Lo <= x && x <= v.Hi
			}
		}
	}
	return in != m.Neg
}
