package dataplane

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/fib"
)

// ferry's IPv6 addresses on a port. Every port has a link-local address,
// derived from its MAC (modified EUI-64, RFC 4291 appendix A) unless one
// is configured, and the global addresses the config lists. Workers read
// the list on every NS and every packet to ferry, without locks: it is
// fixed when the router is built, and an address that loses duplicate
// address detection is only marked off.

// addr6 is one of ferry's IPv6 addresses.
type addr6 struct {
	a    [16]byte
	bits int
	// tentative until DAD has run (RFC 4862 5.4): ferry neither answers
	// for it nor sends from it. off: another node defended it.
	tentative atomic.Bool
	off       atomic.Bool
	conflict  atomic.Bool // a worker saw it defended or claimed during DAD
}

func (a *addr6) usable() bool { return !a.tentative.Load() && !a.off.Load() }

// port6 is a port's IPv6 state.
type port6 struct {
	ll     *addr6   // link-local
	global []*addr6 // from the config
	all    []*addr6 // ll first, then global
	ra     *config.RA
	raState
}

// eui64LinkLocal is fe80::/64 with the modified EUI-64 interface
// identifier of mac: the universal/local bit flipped, ff:fe in the middle.
func eui64LinkLocal(mac [6]byte) [16]byte {
	return [16]byte{0: 0xfe, 1: 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]}
}

// newPort6 splits ifc's IPv6 addresses from its IPv4 ones and returns them,
// with the IPv4 addresses left for the IPv4 code.
func newPort6(mac [6]byte, ifc config.Interface) (*port6, []netip.Prefix) {
	p6 := &port6{ra: ifc.RA}
	var v4 []netip.Prefix
	for _, a := range ifc.Addresses {
		if a.Addr().Is4() {
			v4 = append(v4, a)
			continue
		}
		x := &addr6{a: a.Addr().As16(), bits: a.Bits()}
		if a.Addr().IsLinkLocalUnicast() {
			p6.ll = x
		} else {
			p6.global = append(p6.global, x)
		}
	}
	if p6.ll == nil {
		p6.ll = &addr6{a: eui64LinkLocal(mac), bits: 64}
	}
	p6.all = append([]*addr6{p6.ll}, p6.global...)
	return p6, v4
}

// own returns ferry's address a on this port, usable or not, or nil.
func (p *port6) own(a []byte) *addr6 {
	for _, x := range p.all {
		if string(x.a[:]) == string(a) {
			return x
		}
	}
	return nil
}

// source6 picks ferry's address on port for talking to dst: the link-local
// one for a link-local dst, else a global one whose prefix holds dst, else
// the first usable global one. ok is false if there is none.
func (p *port6) source6(dst []byte) (a [16]byte, ok bool) {
	if dst[0] == 0xfe && dst[1]&0xc0 == 0x80 {
		return p.ll.a, p.ll.usable()
	}
	var first *addr6
	for _, x := range p.global {
		if !x.usable() {
			continue
		}
		if prefixHolds(x.a[:], x.bits, dst) {
			return x.a, true
		}
		if first == nil {
			first = x
		}
	}
	if first != nil {
		return first.a, true
	}
	return a, false
}

func prefixHolds(p []byte, bits int, a []byte) bool {
	n := bits / 8
	if string(p[:n]) != string(a[:n]) {
		return false
	}
	if r := bits % 8; r != 0 {
		m := byte(0xff << (8 - r))
		return p[n]&m == a[n]&m
	}
	return true
}

// loadTables6 adds the connected and local routes of every port's global
// IPv6 addresses. Unlike IPv4's, the local /128s go in table local only,
// not in main as well: a /128 inside a connected /64 makes every lookup of
// a neighbour on that link walk the trie to its last byte (about twice the
// cost), so route6 compares the destination with ferry's few addresses
// (local6) before the batch lookup instead. Link-local addresses are not
// routed at all (fe80::/64 is on every port): route6 checks them against
// the ingress port.
func (r *Router) loadTables6() error {
	local := r.policy.Table(fib.TableLocal)
	for _, p := range r.ports {
		for _, x := range p.v6.global {
			pf := netip.PrefixFrom(netip.AddrFrom16(x.a), x.bits)
			if err := r.fib.Add(fib.Route{Prefix: pf.Masked(), Type: fib.Unicast, Dev: p.idx, Proto: "connected"}); err != nil {
				return fmt.Errorf("connected route %s dev %s: %w", pf.Masked(), p.name, err)
			}
			lr := fib.Route{Prefix: netip.PrefixFrom(pf.Addr(), 128), Type: fib.Local, Dev: p.idx, Proto: "local"}
			r.local6 = append(r.local6, local6{a: x.a, x: x})
			if err := local.Add(lr); err != nil {
				return fmt.Errorf("local route %s dev %s: %w", pf.Addr(), p.name, err)
			}
		}
	}
	return nil
}

// local6 is one of ferry's global IPv6 addresses, for route6's check.
type local6 struct {
	a [16]byte
	x *addr6
}

// isLocal6 reports whether dst is one of ferry's usable global addresses.
func (r *Router) isLocal6(dst []byte) bool {
	for i := range r.local6 {
		if string(r.local6[i].a[:]) == string(dst[:16]) {
			return !r.local6[i].x.off.Load()
		}
	}
	return false
}

// connectedPort6 is the port whose IPv6 network holds a, or -1.
func (r *Router) connectedPort6(a netip.Addr) int {
	b := a.As16()
	for _, p := range r.ports {
		for _, x := range p.v6.global {
			if prefixHolds(x.a[:], x.bits, b[:]) {
				return p.idx
			}
		}
	}
	return -1
}

// routeGet6 is RouteGet for IPv6. A link-local destination is on every
// link: as `ip route get` does, it needs the interface (iif) to say which.
func (r *Router) routeGet6(dst, src netip.Addr, in int, mark uint32) (RouteGetStatus, error) {
	g := RouteGetStatus{Dst: dst.String()}
	if dst.IsLinkLocalUnicast() {
		if in < 0 {
			return g, fmt.Errorf("%s is link-local: name the interface (iif)", dst)
		}
		p := r.ports[in]
		g.Type, g.Dev = "unicast", p.name
		if p.v6.own(dst.AsSlice()) != nil {
			g.Type = "local"
		}
		g.Src = netip.AddrFrom16(p.v6.ll.a).String()
		return g, nil
	}
	d, ok := r.policy.Explain(src, dst, in, mark)
	if !ok || d.NextHop == nil {
		return g, fmt.Errorf("%s: network unreachable (no rule found a route)", dst)
	}
	g.Type = d.NextHop.Type.String()
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
		var s netip.Addr = netip.IPv6Unspecified()
		if src.IsValid() {
			s = src
		}
		h = h.Pick(fib.FlowHash6(r.hashSeed, s, dst, 0, 0, 0))
	}
	if h.Type == fib.Unicast || h.Type == fib.Local {
		g.Dev = r.portName(h.Dev)
		if h.Gateway6.IsValid() {
			g.Via = h.Gateway6.String()
		}
		if h.Dev >= 0 && h.Dev < len(r.ports) {
			if a, ok := r.ports[h.Dev].v6.source6(dst.AsSlice()); ok {
				g.Src = netip.AddrFrom16(a).String()
			}
		}
	}
	return g, nil
}
