package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NAT statements. A `type nat` base chain holds rules whose final word is
// masquerade, snat or dnat; as in netfilter, its chains see only the first
// packet of each connection (the dataplane evaluates them for new flows
// only, with EvalNAT), and the translation then applies to the whole
// connection. The statements end the NAT evaluation at their hook, as
// accept does. Only IPv4 is translated (NAT44).
//
//	masquerade [to :PORT[-PORT]] [random] [persistent] [fully-random]
//	snat [ip] to ADDR[-ADDR][:PORT[-PORT]] [flags]
//	dnat [ip] to ADDR[-ADDR][:PORT[-PORT]] [flags]
//
// snat and masquerade belong at postrouting (or input), dnat at
// prerouting (or output). The flags are accepted for compatibility:
// ferry's mappings are endpoint-independent and pick ports at random when
// the original port is taken whatever they say.

// NATKind is the translation a NAT statement asks for.
type NATKind uint8

const (
	NATMasquerade NATKind = iota + 1 // source: the egress port's address
	NATSNAT                          // source: a given address (range) and port (range)
	NATDNAT                          // destination: a given address (range) and port (range)
)

func (k NATKind) String() string {
	return [...]string{NATMasquerade: "masquerade", NATSNAT: "snat", NATDNAT: "dnat"}[k]
}

// NATSpec is one NAT statement: where to translate to. Addresses are
// invalid for masquerade; ports 0 keep the packet's own.
type NATSpec struct {
	Pos            Pos
	Kind           NATKind
	AddrLo, AddrHi netip.Addr
	PortLo, PortHi uint16
	Flags          []string
}

// String prints the statement as nft lists it.
func (s *NATSpec) String() string {
	var b strings.Builder
	b.WriteString(s.Kind.String())
	if s.AddrLo.IsValid() || s.PortLo != 0 {
		b.WriteString(" ip to ")
		if s.Kind == NATMasquerade {
			b.Reset()
			b.WriteString("masquerade to ")
		}
		if s.AddrLo.IsValid() {
			b.WriteString(s.AddrLo.String())
			if s.AddrHi != s.AddrLo {
				b.WriteString("-" + s.AddrHi.String())
			}
		}
		if s.PortLo != 0 {
			fmt.Fprintf(&b, ":%d", s.PortLo)
			if s.PortHi != s.PortLo {
				fmt.Fprintf(&b, "-%d", s.PortHi)
			}
		}
	}
	for _, f := range s.Flags {
		b.WriteString(" " + f)
	}
	return b.String()
}

var natFlags = map[string]bool{"random": true, "persistent": true, "fully-random": true}

// natVerdict parses masquerade, snat and dnat.
func (p *parser) natVerdict() *Verdict {
	t := p.next()
	s := &NATSpec{Pos: t.pos}
	switch t.text {
	case "masquerade":
		s.Kind = NATMasquerade
	case "snat":
		s.Kind = NATSNAT
	default:
		s.Kind = NATDNAT
	}
	if s.Kind != NATMasquerade && p.isWord("ip") {
		p.next()
	}
	if p.isWord("ip6") {
		p.fail(p.peek(), "%s: only IPv4 is translated (NAT44)", t.text)
	}
	if p.isWord("to") {
		p.next()
		w := p.word("address[:port]")
		p.natTarget(s, w)
	} else if s.Kind != NATMasquerade {
		p.fail(p.peek(), "%s needs `to ADDRESS[:PORT]`", t.text)
	}
	for p.peek().kind == tWord && natFlags[p.peek().text] {
		s.Flags = append(s.Flags, p.next().text)
	}
	return &Verdict{Pos: t.pos, Kind: VNAT, NAT: s}
}

// natTarget reads ADDR[-ADDR][:PORT[-PORT]] (masquerade: :PORT[-PORT]).
func (p *parser) natTarget(s *NATSpec, w token) {
	addr, ports := w.text, ""
	if i := strings.LastIndexByte(w.text, ':'); i >= 0 && strings.Count(w.text, ":") == 1 {
		addr, ports = w.text[:i], w.text[i+1:]
		if ports == "" {
			p.fail(w, "%q: a port after ':'", w.text)
		}
	}
	if s.Kind == NATMasquerade && addr != "" {
		p.fail(w, "masquerade takes only ports (to :1024-65535), not %q", addr)
	}
	if addr != "" {
		lo, hi, _ := strings.Cut(addr, "-")
		a, err := netip.ParseAddr(lo)
		if err != nil || !a.Is4() {
			p.fail(w, "%q is not an IPv4 address (only IPv4 is translated)", lo)
		}
		s.AddrLo, s.AddrHi = a, a
		if hi != "" {
			b, err := netip.ParseAddr(hi)
			if err != nil || !b.Is4() || b.Less(a) {
				p.fail(w, "bad address range %q", addr)
			}
			s.AddrHi = b
		}
	}
	if ports != "" {
		lo, hi, _ := strings.Cut(ports, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if hi != "" {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || a == 0 || b < a {
			p.fail(w, "bad port range %q", ports)
		}
		s.PortLo, s.PortHi = uint16(a), uint16(b)
	}
}

// NAT returns the NAT statement a Result names (Result.NAT, 1-based).
func (p *Program) NAT(k int) *NATSpec { return p.nats[k-1] }

// HasNAT reports whether the ruleset has NAT chains.
func (p *Program) HasNAT() bool {
	for _, l := range p.natHooks {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

// EvalNAT runs the NAT chains at hook h for the first packet of a
// connection. Result.NAT names the statement that matched (0: none);
// Result.Action is ActAccept unless a rule dropped the packet.
func (p *Program) EvalNAT(h Hook, pkt *Packet, ctr *Counters, now int64) Result {
	var res Result
	fb := famBit(pkt.Family)
	for _, c := range p.natHooks[h] {
		if c.fams&fb == 0 {
			continue
		}
		if a := p.runBase(c, h, pkt, ctr, now, &res); a != ActAccept || res.NAT != 0 {
			res.Action = a
			return res
		}
	}
	return res
}

// checkNAT checks a NAT statement where it is written.
func (c *compiler) checkNAT(ch *Chain, v *Verdict, fam uint8, t *Table) error {
	if t.Family == FamilyIP6 || fam == 6 {
		return errAt(v.Pos, "%s on IPv6: only IPv4 is translated (NAT44)", v.NAT.Kind)
	}
	if ch.Base == nil {
		return nil // a regular chain: checked where it is reached from, at run time
	}
	if ch.Base.Type != "nat" {
		return errAt(v.Pos, "%s in a filter chain: put it in a `type nat` chain", v.NAT.Kind)
	}
	switch h := ch.Base.Hook; v.NAT.Kind {
	case NATDNAT:
		if h != HookPrerouting && h != HookOutput {
			return errAt(v.Pos, "dnat at hook %s: it belongs at prerouting (or output)", h)
		}
	default:
		if h != HookPostrouting && h != HookInput {
			return errAt(v.Pos, "%s at hook %s: it belongs at postrouting (or input)", v.NAT.Kind, h)
		}
	}
	return nil
}
