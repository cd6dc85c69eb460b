package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Well-known routing tables, numbered as in Linux.
const (
	TableDefault uint32 = 253
	TableMain    uint32 = 254
	TableLocal   uint32 = 255
)

var builtinTables = map[string]uint32{"default": TableDefault, "main": TableMain, "local": TableLocal}

// TableID resolves a table reference: a number, a built-in name (main,
// local, default) or a name declared with [[table]].
func (c *Config) TableID(ref string) (uint32, error) {
	if id, ok := builtinTables[ref]; ok {
		return id, nil
	}
	for _, t := range c.Tables {
		if t.Name == ref {
			return t.ID, nil
		}
	}
	n, err := strconv.ParseUint(ref, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a table number nor a declared table name", ref)
	}
	if n == 0 {
		return 0, fmt.Errorf("table 0 is not a table (Linux reserves it as \"unspecified\")")
	}
	return uint32(n), nil
}

// TableName is the inverse of TableID: the declared or built-in name of id,
// else its number.
func (c *Config) TableName(id uint32) string {
	for n, b := range builtinTables {
		if b == id {
			return n
		}
	}
	for _, t := range c.Tables {
		if t.ID == id {
			return t.Name
		}
	}
	return strconv.FormatUint(uint64(id), 10)
}

func (c *checker) tables(raw *rawFile, cfg *Config) {
	names := map[string]string{}
	ids := map[uint32]string{}
	for i, rt := range raw.Table {
		t := fmt.Sprintf("table[%d]", i)
		switch {
		case rt.ID == nil:
			c.bad(t+".id", "missing: a table number, 1..4294967295")
			continue
		case *rt.ID < 1 || *rt.ID > math.MaxUint32:
			c.bad(t+".id", "%d is out of range 1..4294967295", *rt.ID)
			continue
		}
		id := uint32(*rt.ID)
		if _, ok := builtinTables[rt.Name]; ok || isBuiltinID(id) {
			c.bad(t+".id", "tables main (%d), local (%d) and default (%d) are built in and cannot be declared", TableMain, TableLocal, TableDefault)
			continue
		}
		if rt.Name == "" || strings.ContainsAny(rt.Name, " \t/") || isNumber(rt.Name) {
			c.bad(t+".name", "%q is not a table name: use letters, digits, - and _ (not a bare number)", rt.Name)
			continue
		}
		if o, dup := names[rt.Name]; dup {
			c.bad(t+".name", "%q is already declared in %s", rt.Name, o)
			continue
		}
		if o, dup := ids[id]; dup {
			c.bad(t+".id", "table %d is already declared in %s", id, o)
			continue
		}
		names[rt.Name], ids[id] = t, t
		cfg.Tables = append(cfg.Tables, Table{ID: id, Name: rt.Name, Line: c.lines[t]})
	}
}

func isBuiltinID(id uint32) bool { return id == TableMain || id == TableLocal || id == TableDefault }

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 0, 64)
	return err == nil
}

// tableRef reads a `table` value, which TOML gives as an integer or a string.
func (c *checker) tableRef(key string, v any, cfg *Config) (uint32, bool) {
	var ref string
	switch x := v.(type) {
	case nil:
		return TableMain, true
	case int64:
		ref = strconv.FormatInt(x, 10)
	case string:
		ref = x
	default:
		c.bad(key, "want a table number or name, not %v", v)
		return 0, false
	}
	id, err := cfg.TableID(ref)
	if err != nil {
		c.bad(key, "%v", err)
		return 0, false
	}
	if id == TableLocal {
		c.bad(key, "the local table holds ferry's own addresses and is managed by ferry")
		return 0, false
	}
	return id, true
}

type routeKey struct {
	table  uint32
	prefix netip.Prefix
	metric uint32
}

func (c *checker) routes(raw *rawFile, cfg *Config) {
	seen := map[routeKey]string{}
	for i, rr := range raw.Route {
		t := fmt.Sprintf("route[%d]", i)
		r, ok := c.route(t, rr, cfg)
		if !ok {
			continue
		}
		k := routeKey{r.Table, r.Prefix, r.Metric}
		if o, dup := seen[k]; dup {
			c.bad(t+".prefix", "%s metric %d in table %s duplicates %s", r.Prefix, r.Metric, cfg.TableName(r.Table), o)
			continue
		}
		seen[k] = t
		cfg.Routes = append(cfg.Routes, r)
	}
}

// route checks one route; t is its key prefix in messages ("route[3]").
func (c *checker) route(t string, rr rawRoute, cfg *Config) (Route, bool) {
	r := Route{Dev: rr.Dev, Type: rr.Type, Line: c.lines[t]}
	if r.Type == "" {
		r.Type = "unicast"
	}
	p, err := netip.ParsePrefix(rr.Prefix)
	switch {
	case rr.Prefix == "":
		c.bad(t+".prefix", "missing: the destination, like 198.51.100.0/24 or 0.0.0.0/0")
		return r, false
	case err != nil:
		c.bad(t+".prefix", "%q is not a prefix (like 198.51.100.0/24)", rr.Prefix)
		return r, false
	case p.Addr().Is4In6() || p.Addr().Zone() != "":
		c.bad(t+".prefix", "%s: IPv4-mapped or zoned prefixes are not routable", rr.Prefix)
		return r, false
	case p != p.Masked():
		c.bad(t+".prefix", "%s has host bits set; did you mean %s?", rr.Prefix, p.Masked())
		return r, false
	}
	r.Prefix = p
	if rr.Metric < 0 || rr.Metric > math.MaxUint32 {
		c.bad(t+".metric", "%d is out of range 0..4294967295", rr.Metric)
		return r, false
	}
	r.Metric = uint32(rr.Metric)
	var ok bool
	if r.Table, ok = c.tableRef(t+".table", rr.Table, cfg); !ok {
		return r, false
	}
	switch r.Type {
	case "unicast":
	case "blackhole", "unreachable", "prohibit":
		if rr.Via != "" || rr.Dev != "" || len(rr.Nexthop) > 0 {
			c.bad(t+".type", "a %s route takes no via, dev or nexthop", r.Type)
			return r, false
		}
		return r, true
	default:
		c.bad(t+".type", "%q is not a route type (unicast, blackhole, unreachable, prohibit)", rr.Type)
		return r, false
	}
	if len(rr.Nexthop) > 0 {
		if rr.Via != "" || rr.Dev != "" {
			c.bad(t+".nexthop", "an ECMP route names its gateways in nexthop only, not in via or dev")
			return r, false
		}
		seen := map[Nexthop]bool{}
		for j, rn := range rr.Nexthop {
			k := fmt.Sprintf("%s.nexthop[%d]", t, j)
			via, dev, ok := c.gateway(k, rn.Via, rn.Dev, cfg)
			if !ok {
				return r, false
			}
			if !via.IsValid() {
				c.bad(k+".via", "missing: each ECMP next hop needs a gateway")
				return r, false
			}
			if via.Is4() != p.Addr().Is4() {
				c.bad(k+".via", "%s and the prefix %s are of different address families", via, p)
				return r, false
			}
			w := int64(1)
			if rn.Weight != nil {
				w = *rn.Weight
			}
			if w < 1 || w > 256 {
				c.bad(k+".weight", "%d is out of range 1..256", w)
				return r, false
			}
			n := Nexthop{Via: via, Dev: dev}
			if seen[n] {
				c.bad(k+".via", "%s dev %s is listed twice", via, dev)
				return r, false
			}
			seen[n] = true
			n.Weight = uint32(w)
			r.Nexthops = append(r.Nexthops, n)
		}
		if len(r.Nexthops) > 64 {
			c.bad(t+".nexthop", "%d next hops: at most 64", len(r.Nexthops))
			return r, false
		}
		r.Dev = ""
		return r, true
	}
	via, dev, ok := c.gateway(t, rr.Via, rr.Dev, cfg)
	if !ok {
		return r, false
	}
	if via.IsValid() && via.Is4() != p.Addr().Is4() {
		c.bad(t+".via", "%s and the prefix %s are of different address families", via, p)
		return r, false
	}
	r.Via, r.Dev = via, dev
	return r, true
}

// gateway checks a via/dev pair: dev must be a port, via (if set) an IPv4
// address on one of its connected networks, and one of them is required.
// It returns the device, derived from via when not given.
func (c *checker) gateway(t, viaS, dev string, cfg *Config) (netip.Addr, string, bool) {
	if dev != "" && !c.hasDev(cfg, dev) {
		c.bad(t+".dev", "%q is not a configured interface", dev)
		return netip.Addr{}, "", false
	}
	if viaS == "" {
		if dev == "" {
			c.bad(t+".via", "missing: a unicast route needs via, dev or both")
			return netip.Addr{}, "", false
		}
		return netip.Addr{}, dev, true
	}
	via, err := netip.ParseAddr(viaS)
	if err != nil || via.Zone() != "" || via.Is4In6() || via.IsMulticast() || via.IsUnspecified() {
		c.bad(t+".via", "%q is not a unicast IPv4 or IPv6 address", viaS)
		return netip.Addr{}, "", false
	}
	if via.Is6() && via.IsLinkLocalUnicast() {
		// A link-local gateway is on every link: the device says which.
		if dev == "" {
			c.bad(t+".dev", "missing: a link-local gateway (%s) needs its interface", via)
			return netip.Addr{}, "", false
		}
		return via, dev, true
	}
	if _, own := c.ownAddr(cfg, via); own {
		c.bad(t+".via", "%s is one of ferry's own addresses", via)
		return netip.Addr{}, "", false
	}
	d, ok := connected(cfg, via, dev)
	if !ok {
		where := "any connected network"
		if dev != "" {
			where = "a network of " + dev
		}
		c.bad(t+".via", "%s is not on %s (interfaces: %s)", via, where, c.networks(cfg))
		return netip.Addr{}, "", false
	}
	return via, d, true
}

func (c *checker) rules(raw *rawFile, cfg *Config) {
	next := uint32(32765) // as Linux numbers rules added without a priority
	for i, rr := range raw.Rule {
		t := fmt.Sprintf("rule[%d]", i)
		r, ok := c.rule(t, rr, cfg)
		if !ok {
			continue
		}
		if rr.Priority == nil {
			if next == 0 {
				c.bad(t+".priority", "missing, and no priority is left below the rules before it: set one")
				continue
			}
			r.Priority = next
		}
		next = min(next, r.Priority-1)
		for _, o := range cfg.Rules {
			if o.equal(r) {
				c.bad(t, "duplicates the rule on line %d", o.Line)
				ok = false
			}
		}
		if ok {
			cfg.Rules = append(cfg.Rules, r)
		}
	}
}

func (r Rule) equal(o Rule) bool {
	r.Line, o.Line = 0, 0
	return r == o
}

func (c *checker) rule(t string, rr rawRule, cfg *Config) (Rule, bool) {
	r := Rule{Line: c.lines[t], IIf: rr.IIf, Action: rr.Action}
	ok := true
	if rr.Priority != nil {
		if *rr.Priority < 1 || *rr.Priority > math.MaxUint32 {
			c.bad(t+".priority", "%d is out of range 1..4294967295 (0 is the local table's rule)", *rr.Priority)
			ok = false
		}
		r.Priority = uint32(*rr.Priority)
	}
	for _, sel := range []struct {
		key string
		s   string
		p   *netip.Prefix
	}{{"from", rr.From, &r.From}, {"to", rr.To, &r.To}} {
		if sel.s == "" || sel.s == "all" {
			continue
		}
		p, err := parsePrefixOrAddr(sel.s)
		switch {
		case err != nil:
			c.bad(t+"."+sel.key, "%q is not a prefix or address (like 192.0.2.0/25)", sel.s)
			ok = false
		case p.Addr().Is4In6() || p.Addr().Zone() != "":
			c.bad(t+"."+sel.key, "%s: IPv4-mapped or zoned prefixes cannot be matched", sel.s)
			ok = false
		case p != p.Masked():
			c.bad(t+"."+sel.key, "%s has host bits set; did you mean %s?", sel.s, p.Masked())
			ok = false
		default:
			*sel.p = p
		}
	}
	if rr.IIf != "" && !c.hasDev(cfg, rr.IIf) {
		c.bad(t+".iif", "%q is not a configured interface", rr.IIf)
		ok = false
	}
	switch m := rr.FwMark.(type) {
	case nil:
	case int64:
		if m < 0 || m > math.MaxUint32 {
			c.bad(t+".fwmark", "%d is out of range 0..0xffffffff", m)
			ok = false
		}
		r.Mark, r.MarkMask = uint32(m), math.MaxUint32
	case string:
		mark, mask, err := ParseMark(m)
		if err != nil {
			c.bad(t+".fwmark", "%v", err)
			ok = false
		}
		r.Mark, r.MarkMask = mark, mask
	default:
		c.bad(t+".fwmark", "want a number or \"MARK/MASK\", not %v", m)
		ok = false
	}
	switch r.Action {
	case "":
		if rr.Table == nil {
			c.bad(t+".action", "missing: lookup (with table), blackhole, unreachable or prohibit")
			return r, false
		}
		r.Action = "lookup"
		fallthrough
	case "lookup":
		if rr.Table == nil {
			c.bad(t+".table", "missing: a lookup rule names the table it looks up")
			return r, false
		}
		id, tok := c.tableRef(t+".table", rr.Table, cfg)
		if !tok {
			return r, false
		}
		r.Table = id
	case "blackhole", "unreachable", "prohibit":
		if rr.Table != nil {
			c.bad(t+".table", "a %s rule looks up no table", r.Action)
			return r, false
		}
	default:
		c.bad(t+".action", "%q is not a rule action (lookup, blackhole, unreachable, prohibit)", r.Action)
		return r, false
	}
	return r, ok
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseMark reads an fwmark selector as `ip rule` writes it: MARK or
// MARK/MASK, decimal or 0x hex. A mark without a mask matches exactly.
func ParseMark(s string) (mark, mask uint32, err error) {
	ms, ks, hasMask := strings.Cut(s, "/")
	m, err := strconv.ParseUint(ms, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("%q is not a mark (like 0x10 or 0x10/0xff)", s)
	}
	mask = math.MaxUint32
	if hasMask {
		k, err := strconv.ParseUint(ks, 0, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("%q: mask %q is not a number", s, ks)
		}
		mask = uint32(k)
	}
	if uint32(m)&^mask != 0 {
		return 0, 0, fmt.Errorf("%q: mark has bits outside its mask", s)
	}
	return uint32(m), mask, nil
}
