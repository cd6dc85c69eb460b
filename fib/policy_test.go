package fib

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func mustRule(t *testing.T, p *Policy, r Rule) {
	t.Helper()
	if err := p.AddRule(r); err != nil {
		t.Fatal(err)
	}
}

func mustRoute(t *testing.T, f *FIB, r Route) {
	t.Helper()
	if err := f.Add(r); err != nil {
		t.Fatal(err)
	}
}

// twoUplinks is the classic source-routing setup: the main table's default
// goes out uplink 1; traffic from 198.51.100.0/24 uses table 100, whose
// default goes out uplink 2.
func twoUplinks(t *testing.T) *Policy {
	p := NewPolicy(nil)
	mustRoute(t, p.Table(TableMain), Route{Prefix: pfx("0.0.0.0/0"), Via: ip("192.0.2.1"), Dev: 1})
	mustRoute(t, p.Table(TableMain), Route{Prefix: pfx("203.0.113.0/24"), Dev: 3})
	mustRoute(t, p.Table(100), Route{Prefix: pfx("0.0.0.0/0"), Via: ip("192.0.2.129"), Dev: 2})
	mustRule(t, p, Rule{Priority: 100, From: pfx("198.51.100.0/24"), IIf: -1, Table: 100})
	return p
}

func TestPolicySourceRouting(t *testing.T) {
	p := twoUplinks(t)
	dst := u32("8.8.8.8")
	if h := p.Lookup4(Flow4{Src: u32("203.0.113.5"), Dst: dst, IIf: 3}); h == nil || h.Dev != 1 {
		t.Errorf("other source: %+v, want uplink 1", h)
	}
	if h := p.Lookup4(Flow4{Src: u32("198.51.100.5"), Dst: dst, IIf: 3}); h == nil || h.Dev != 2 {
		t.Errorf("policy source: %+v, want uplink 2", h)
	}
	// Table 100 has no route for an address the main table knows only if
	// its default is gone: then the walk falls through to main.
	if err := p.Table(100).Delete(Route{Prefix: pfx("0.0.0.0/0"), Dev: -1}); err != nil {
		t.Fatal(err)
	}
	if h := p.Lookup4(Flow4{Src: u32("198.51.100.5"), Dst: dst, IIf: 3}); h == nil || h.Dev != 1 {
		t.Errorf("fall through: %+v, want uplink 1 from main", h)
	}
	d, ok := p.Explain(ip("198.51.100.5"), ip("203.0.113.9"), 3, 0)
	if !ok || d.Table != TableMain || d.Rule != DefaultRule || d.Route.Prefix != pfx("203.0.113.0/24") || d.NextHop.Dev != 3 {
		t.Errorf("Explain: %+v %v", d, ok)
	}
	if got := p.Tables(); len(got) != 2 || got[0] != 100 || got[1] != TableMain {
		t.Errorf("Tables() = %v", got)
	}
}

func TestPolicySelectorsAndActions(t *testing.T) {
	p := twoUplinks(t)
	mustRule(t, p, Rule{Priority: 10, IIf: 5, Action: RuleProhibit})
	mustRule(t, p, Rule{Priority: 20, To: pfx("192.0.2.0/25"), IIf: -1, Action: RuleUnreachable})
	mustRule(t, p, Rule{Priority: 30, Mark: 0x10, MarkMask: 0xf0, IIf: -1, Action: RuleBlackhole})
	mustRule(t, p, Rule{Priority: 40, Mark: 0x2, IIf: -1, Table: 100})
	mustRule(t, p, Rule{Priority: 50, From: pfx("2001:db8::/32"), IIf: -1, Action: RuleBlackhole})
	base := Flow4{Src: u32("203.0.113.5"), Dst: u32("8.8.8.8"), IIf: 3}
	for _, c := range []struct {
		name string
		mod  func(*Flow4)
		typ  RouteType
		dev  int
	}{
		{"plain", func(*Flow4) {}, Unicast, 1},
		{"iif 5", func(k *Flow4) { k.IIf = 5 }, Prohibit, -1},
		{"to 192.0.2.0/25", func(k *Flow4) { k.Dst = u32("192.0.2.77") }, Unreachable, -1},
		{"to 192.0.2.128", func(k *Flow4) { k.Dst = u32("192.0.2.200") }, Unicast, 1},
		{"mark 0x13 under 0xf0", func(k *Flow4) { k.Mark = 0x13 }, Blackhole, -1},
		{"mark 0x23", func(k *Flow4) { k.Mark = 0x23 }, Unicast, 1},
		{"mark 2 exact", func(k *Flow4) { k.Mark = 2 }, Unicast, 2},
		{"mark 3 not exact", func(k *Flow4) { k.Mark = 3 }, Unicast, 1},
	} {
		k := base
		c.mod(&k)
		h := p.Lookup4(k)
		if h == nil || h.Type != c.typ || h.Dev != c.dev {
			t.Errorf("%s: %+v, want %v dev %d", c.name, h, c.typ, c.dev)
		}
		out := make([]*NextHop, 1)
		p.Lookup4Batch([]Flow4{k}, out)
		if out[0] != h {
			t.Errorf("%s: batch %+v, single %+v", c.name, out[0], h)
		}
	}
	// The IPv6-only rule does not touch IPv6 lookups from elsewhere, and
	// blackholes those from its prefix.
	mustRoute(t, p.Table(TableMain), Route{Prefix: pfx("::/0"), Via: ip("2001:db8::1"), Dev: 1})
	if h := p.Lookup6(Flow6{Src: ip("2001:db9::1"), Dst: ip("2001:db8:5::1"), IIf: 3}); h == nil || h.Dev != 1 {
		t.Errorf("v6 other source: %+v", h)
	}
	if h := p.Lookup6(Flow6{Src: ip("2001:db8::7"), Dst: ip("2001:db8:5::1"), IIf: 3}); h == nil || h.Type != Blackhole {
		t.Errorf("v6 policy source: %+v", h)
	}
	rs := p.Rules()
	for i := 1; i < len(rs); i++ {
		if rs[i].Priority < rs[i-1].Priority {
			t.Fatalf("rules out of order: %v", rs)
		}
	}
	if err := p.DeleteRule(Rule{Priority: 10, IIf: 5, Action: RuleProhibit}); err != nil {
		t.Fatal(err)
	}
	k := base
	k.IIf = 5
	if h := p.Lookup4(k); h == nil || h.Type != Unicast {
		t.Errorf("after deleting the iif rule: %+v", h)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = p.Lookup4(k) }); n != 0 {
		t.Errorf("Policy.Lookup4 allocates %v", n)
	}
}

func TestPolicyErrors(t *testing.T) {
	p := NewPolicy(nil)
	for name, r := range map[string]Rule{
		"host bits":      {From: pfx("198.51.100.1/24"), IIf: -1, Table: 1},
		"mixed families": {From: pfx("198.51.100.0/24"), To: pfx("2001:db8::/32"), IIf: -1, Table: 1},
		"no table":       {IIf: -1, Action: RuleLookup},
		"bad iif":        {IIf: -2, Table: 1},
		"mark off mask":  {Mark: 0x3, MarkMask: 0x1, IIf: -1, Table: 1},
		"bad action":     {IIf: -1, Action: 9},
	} {
		if err := p.AddRule(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	if err := p.AddRule(DefaultRule); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate rule: err %v", err)
	}
	if err := p.DeleteRule(Rule{Priority: 1, IIf: -1, Table: 7}); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete missing rule: err %v", err)
	}
	if err := p.DeleteRule(DefaultRule); err != nil {
		t.Fatal(err)
	}
	mustRoute(t, p.Table(TableMain), Route{Prefix: pfx("0.0.0.0/0"), Dev: 1})
	if h := p.Lookup4(Flow4{Dst: 1}); h != nil {
		t.Errorf("no rules left, yet %+v", h)
	}
}

// TestPolicyConcurrent changes rules while readers look up; every answer
// must be one of the two the rule set can give.
func TestPolicyConcurrent(t *testing.T) {
	p := twoUplinks(t)
	r := Rule{Priority: 5, Mark: 1, IIf: -1, Action: RuleBlackhole}
	var stop atomic.Bool
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks := []Flow4{{Src: u32("198.51.100.9"), Dst: 1, Mark: 1}, {Src: u32("198.51.100.9"), Dst: 1}}
			out := make([]*NextHop, 2)
			for !stop.Load() {
				p.Lookup4Batch(ks, out)
				if out[0] == nil || (out[0].Type != Blackhole && out[0].Dev != 2) || out[1] == nil || out[1].Dev != 2 {
					bad.Add(1)
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	in := false
	for range 2000 {
		var err error
		if in {
			err = p.DeleteRule(r)
		} else {
			err = p.AddRule(r)
		}
		if err != nil {
			t.Fatal(err)
		}
		in = !in
		if rng.IntN(50) == 0 {
			p.Table(42) // new tables appear while readers run
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d impossible answers", bad.Load())
	}
}
