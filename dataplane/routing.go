package dataplane

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/fib"
)

// The routing control plane: tables, policy rules and the route changes
// ferryctl asks for. Workers only ever read the published tables (see the
// fib package); everything here runs on the control socket's goroutines,
// serialised by ctlMu so that a bulk load and a single add cannot
// interleave.
//
// Tables follow Linux: ferry's own addresses live in table local, looked
// up first by the priority-0 rule; routes go to main (254) unless they name
// a table; rules choose tables. The local routes are also kept in main, so
// that while the only rules are local's and main's the route stage does one
// lookup in main instead of walking the rules.

// localRule is Linux's priority-0 rule.
var localRule = fib.Rule{Priority: 0, IIf: -1, Action: fib.RuleLookup, Table: fib.TableLocal}

// initRouting sets up the policy with main = r.fib and the local rule.
func (r *Router) initRouting(cfg *config.Config) {
	r.cfg = cfg
	r.policy = fib.NewPolicy(r.fib)
	if err := r.policy.AddRule(localRule); err != nil {
		panic(err) // a fresh policy holds only the default rule
	}
	r.hashSeed = rand.Uint32()
	r.publishPolicy()
}

// publishPolicy tells the route stage whether rules beyond local's and
// main's exist.
func (r *Router) publishPolicy() {
	r.policyActive.Store(len(r.policy.Rules()) > 2)
}

// fibRoute turns a checked config route into the FIB's form.
func (r *Router) fibRoute(rt config.Route, proto string) (fib.Route, error) {
	fr := fib.Route{Prefix: rt.Prefix, Via: rt.Via, Dev: -1, Metric: rt.Metric, Proto: proto}
	switch rt.Type {
	case "", "unicast":
		fr.Type = fib.Unicast
	case "blackhole":
		fr.Type = fib.Blackhole
	case "unreachable":
		fr.Type = fib.Unreachable
	case "prohibit":
		fr.Type = fib.Prohibit
	default:
		return fr, fmt.Errorf("unknown route type %q", rt.Type)
	}
	if len(rt.Nexthops) > 0 {
		hops := make([]fib.Hop, len(rt.Nexthops))
		for i, n := range rt.Nexthops {
			dev := r.portIndex(n.Dev)
			if dev < 0 {
				return fr, fmt.Errorf("nexthop via %s: unknown dev %q", n.Via, n.Dev)
			}
			hops[i] = fib.Hop{Via: n.Via, Dev: dev, Weight: n.Weight}
		}
		g, err := fib.NewGroup(hops...)
		if err != nil {
			return fr, err
		}
		fr.Group, fr.Via = g, netip.Addr{}
		return fr, nil
	}
	if rt.Dev != "" {
		fr.Dev = r.portIndex(rt.Dev)
	} else if rt.Via.IsValid() {
		fr.Dev = r.connectedPort(rt.Via)
	}
	if fr.Type == fib.Unicast && fr.Dev < 0 {
		return fr, fmt.Errorf("gateway %s is not on a connected network", rt.Via)
	}
	return fr, nil
}

func (r *Router) fibRule(cr config.Rule) fib.Rule {
	fr := fib.Rule{Priority: cr.Priority, From: cr.From, To: cr.To, IIf: -1, Mark: cr.Mark, MarkMask: cr.MarkMask, Table: cr.Table}
	if cr.IIf != "" {
		fr.IIf = r.portIndex(cr.IIf)
	}
	switch cr.Action {
	case "blackhole":
		fr.Action = fib.RuleBlackhole
	case "unreachable":
		fr.Action = fib.RuleUnreachable
	case "prohibit":
		fr.Action = fib.RuleProhibit
	default:
		fr.Action = fib.RuleLookup
	}
	return fr
}

// AddRoute installs a route (from `ferryctl route add`). Readers see it at
// once; a route for the same prefix, metric and table is an error.
func (r *Router) AddRoute(rt config.Route) error {
	fr, err := r.fibRoute(rt, "static")
	if err != nil {
		return err
	}
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	return r.policy.Table(rt.Table).Add(fr)
}

// DeleteRoute removes the route with rt's prefix, metric and table (and
// gateway and device, when given).
func (r *Router) DeleteRoute(rt config.Route) error {
	// Only what was given selects: prefix and metric always, the gateway
	// and device when named.
	fr := fib.Route{Prefix: rt.Prefix, Metric: rt.Metric, Via: rt.Via, Dev: -1}
	if rt.Dev != "" {
		fr.Dev = r.portIndex(rt.Dev)
	}
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	if !slices.Contains(r.policy.Tables(), rt.Table) {
		return fmt.Errorf("%w: table %s is empty", fib.ErrNotFound, r.cfg.TableName(rt.Table))
	}
	if rt.Table == fib.TableLocal {
		return errors.New("the local table is managed by ferry")
	}
	// A route on a connected network is ferry's own: it goes with the address.
	for _, cur := range r.policy.Table(rt.Table).Routes() {
		if cur.Prefix == fr.Prefix && cur.Metric == fr.Metric && (cur.Proto == "connected" || cur.Proto == "local") {
			return fmt.Errorf("%v is a %s route: it follows ferry's interface addresses", cur.Prefix, cur.Proto)
		}
	}
	return r.policy.Table(rt.Table).Delete(fr)
}

// LoadRoutes adds many routes to one table at once, as a whole: the table
// with its current routes plus these is built aside and swapped in, so
// workers keep forwarding on the old table until the new one is complete,
// and on any error nothing changes. It returns the table's new size.
func (r *Router) LoadRoutes(table uint32, routes []config.Route) (int, error) {
	if table == fib.TableLocal {
		return 0, errors.New("the local table is managed by ferry")
	}
	add := make([]fib.Route, len(routes))
	for i, rt := range routes {
		fr, err := r.fibRoute(rt, "static")
		if err != nil {
			return 0, fmt.Errorf("route %s: %w", rt.Prefix, err)
		}
		add[i] = fr
	}
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	t := r.policy.Table(table)
	all := append(t.Routes(), add...)
	if err := t.Replace(all); err != nil {
		return 0, err
	}
	return t.Len(), nil
}

// AddRule adds a policy rule. Without a priority it gets the one below the
// first rule after local's, as `ip rule add` numbers them.
func (r *Router) AddRule(cr config.Rule) error {
	fr := r.fibRule(cr)
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	if cr.Priority == 0 {
		rules := r.policy.Rules()
		fr.Priority = rules[1].Priority - 1 // rules[0] is local's
		if fr.Priority == 0 {
			return errors.New("no priority left below the first rule: give one")
		}
	}
	if err := r.policy.AddRule(fr); err != nil {
		return err
	}
	r.publishPolicy()
	return nil
}

// DeleteRule removes the rule equal to cr (priority 0 in cr: the first
// rule with its other fields).
func (r *Router) DeleteRule(cr config.Rule) error {
	fr := r.fibRule(cr)
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	if cr.Priority == 0 {
		for _, o := range r.policy.Rules() {
			x := o
			x.Priority = 0
			if o.Priority != 0 && x == fr {
				fr.Priority = o.Priority
				break
			}
		}
	}
	if fr == localRule || fr == fib.DefaultRule {
		return fmt.Errorf("rule %v is built in", fr)
	}
	if err := r.policy.DeleteRule(fr); err != nil {
		return err
	}
	r.publishPolicy()
	return nil
}

// RuleStatus is one row of `ferryctl show rules`.
type RuleStatus struct {
	Priority uint32 `json:"priority"`
	Selector string `json:"selector"` // "from all", "from 192.0.2.0/25 iif r0"...
	Action   string `json:"action"`   // "lookup main", "blackhole"...
}

// Rules lists the policy rules in the order lookups try them.
func (r *Router) Rules() []RuleStatus {
	var out []RuleStatus
	for _, fr := range r.policy.Rules() {
		s := RuleStatus{Priority: fr.Priority, Selector: "from all"}
		if fr.From.IsValid() {
			s.Selector = "from " + fr.From.String()
		}
		if fr.To.IsValid() {
			s.Selector += " to " + fr.To.String()
		}
		if fr.IIf >= 0 && fr.IIf < len(r.ports) {
			s.Selector += " iif " + r.ports[fr.IIf].name
		}
		if fr.Mark != 0 || fr.MarkMask != 0 {
			s.Selector += fmt.Sprintf(" fwmark %#x", fr.Mark)
			if fr.MarkMask != 0 && fr.MarkMask != ^uint32(0) {
				s.Selector += fmt.Sprintf("/%#x", fr.MarkMask)
			}
		}
		if fr.Action == fib.RuleLookup {
			s.Action = "lookup " + r.cfg.TableName(fr.Table)
		} else {
			s.Action = fr.Action.String()
		}
		out = append(out, s)
	}
	return out
}

// TableRoutes lists one table's routes; ok is false if the table does not
// exist. Main does not list the local routes it mirrors (they are shown
// in table local, as Linux shows them).
func (r *Router) TableRoutes(table uint32) (rows []RouteStatus, ok bool) {
	if !slices.Contains(r.policy.Tables(), table) {
		return nil, false
	}
	name := r.cfg.TableName(table)
	for _, rt := range r.policy.Table(table).Routes() {
		if table == fib.TableMain && rt.Type == fib.Local {
			continue
		}
		rows = append(rows, r.routeStatus(rt, name))
	}
	return rows, true
}

// TableIDs lists the tables in use.
func (r *Router) TableIDs() []uint32 { return r.policy.Tables() }

func (r *Router) routeStatus(rt fib.Route, table string) RouteStatus {
	s := RouteStatus{Prefix: rt.Prefix.String(), Type: rt.Type.String(), Metric: rt.Metric, Table: table, Proto: rt.Proto}
	if rt.Proto == "connected" {
		s.Type = "connected"
	}
	if rt.Via.IsValid() {
		s.Via = rt.Via.String()
	}
	s.Dev = r.portName(rt.Dev)
	if rt.Group != nil {
		for _, h := range rt.Group.Hops() {
			s.Nexthops = append(s.Nexthops, NexthopStatus{Via: h.Via.String(), Dev: r.portName(h.Dev), Weight: h.Weight})
		}
	}
	return s
}

func (r *Router) portName(i int) string {
	if i >= 0 && i < len(r.ports) {
		return r.ports[i].name
	}
	return ""
}

// RouteGetStatus is `ferryctl route get`: what a packet with these
// selectors would meet, as `ip route get` prints it.
type RouteGetStatus struct {
	Dst       string       `json:"dst"`
	Rule      RuleStatus   `json:"rule"`
	Table     string       `json:"table,omitempty"`
	Route     *RouteStatus `json:"route,omitempty"` // nil for a rule that decides alone
	Type      string       `json:"type"`            // unicast, local, blackhole, unreachable, prohibit
	Via       string       `json:"via,omitempty"`   // the next hop chosen (an ECMP member for the flow)
	Dev       string       `json:"dev,omitempty"`
	Src       string       `json:"src,omitempty"` // ferry's address on the egress port
	Multipath bool         `json:"multipath,omitempty"`
}

// RouteGet explains the routing of a packet from src (may be invalid) to
// dst arriving on iif ("" = ferry's own) with fwmark mark; for an ECMP
// route it names the member a flow with no ports would use.
func (r *Router) RouteGet(dst, src netip.Addr, iif string, mark uint32) (RouteGetStatus, error) {
	in := -1
	if iif != "" {
		if in = r.portIndex(iif); in < 0 {
			return RouteGetStatus{}, fmt.Errorf("unknown interface %q", iif)
		}
	}
	dst, src = dst.Unmap(), src.Unmap()
	if src.IsValid() && src.Is4() != dst.Is4() {
		return RouteGetStatus{}, errors.New("from and to are of different address families")
	}
	if dst.Is6() {
		return r.routeGet6(dst, src, in, mark)
	}
	d, ok := r.policy.Explain(src, dst, in, mark)
	if !ok || d.NextHop == nil {
		return RouteGetStatus{}, fmt.Errorf("%s: network unreachable (no rule found a route)", dst)
	}
	g := RouteGetStatus{Dst: dst.String(), Type: d.NextHop.Type.String()}
	for i, rs := range r.policy.Rules() {
		if rs == d.Rule {
			g.Rule = r.Rules()[i]
			break
		}
	}
	if d.Rule.Action == fib.RuleLookup {
		g.Table = r.cfg.TableName(d.Table)
		rs := r.routeStatus(d.Route, g.Table)
		g.Route = &rs
	}
	h := d.NextHop
	if h.Multi != nil {
		g.Multipath = true
		var s uint32
		if src.IsValid() {
			s = ip4(src)
		}
		h = h.Pick(fib.FlowHash4(r.hashSeed, s, ip4(dst), 0, 0, 0))
	}
	if h.Type == fib.Unicast || h.Type == fib.Local {
		g.Dev = r.portName(h.Dev)
		if h.Gateway != 0 {
			g.Via = u32addr(h.Gateway).String()
		}
		if h.Dev >= 0 && h.Dev < len(r.ports) {
			if a := r.ports[h.Dev].sourceFor(ip4(dst)); a != 0 {
				g.Src = u32addr(a).String()
			}
		}
	}
	return g, nil
}

func u32addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
