package config

import (
	"strings"
	"testing"
)

const routingCfg = `
[[interface]]
name = "r0"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "r1"
addresses = ["198.51.100.1/25"]

[[interface]]
name = "r2"
addresses = ["198.51.100.129/25"]

[[table]]
id = 100
name = "uplink2"

[[route]]
prefix = "0.0.0.0/0"
via = "198.51.100.2"

[[route]]
prefix = "0.0.0.0/0"
via = "198.51.100.130"
table = "uplink2"

[[route]]
prefix = "203.0.113.0/24"
nexthop = [{ via = "198.51.100.2" }, { via = "198.51.100.130", weight = 3 }]

[[rule]]
priority = 100
from = "192.0.2.128/25"
table = "uplink2"

[[rule]]
fwmark = "0x10/0xf0"
action = "prohibit"

[[rule]]
iif = "r0"
to = "203.0.113.7"
table = 100
`

func TestRoutingConfig(t *testing.T) {
	cfg, err := Parse("r.toml", []byte(routingCfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 3 || cfg.Routes[1].Table != 100 || cfg.Routes[0].Table != TableMain {
		t.Fatalf("routes %+v", cfg.Routes)
	}
	e := cfg.Routes[2]
	if len(e.Nexthops) != 2 || e.Nexthops[0].Dev != "r1" || e.Nexthops[1].Dev != "r2" || e.Nexthops[1].Weight != 3 || e.Nexthops[0].Weight != 1 {
		t.Errorf("ecmp %+v", e.Nexthops)
	}
	r := cfg.Rules
	if len(r) != 3 || r[0].Priority != 100 || r[0].Table != 100 || r[0].Action != "lookup" {
		t.Fatalf("rules %+v", r)
	}
	// Rules without a priority are numbered down from 32765 as ip rule does.
	if r[1].Priority != 99 || r[1].Mark != 0x10 || r[1].MarkMask != 0xf0 || r[1].Action != "prohibit" {
		t.Errorf("rule 2 %+v", r[1])
	}
	if r[2].Priority != 98 || r[2].To.String() != "203.0.113.7/32" || r[2].IIf != "r0" {
		t.Errorf("rule 3 %+v", r[2])
	}
	if id, err := cfg.TableID("uplink2"); err != nil || id != 100 {
		t.Errorf("TableID: %d %v", id, err)
	}
	if cfg.TableName(100) != "uplink2" || cfg.TableName(254) != "main" || cfg.TableName(7) != "7" {
		t.Errorf("TableName")
	}
}

func TestRoutingConfigErrors(t *testing.T) {
	base := "[[interface]]\nname = \"r0\"\naddresses = [\"192.0.2.1/24\"]\n\n"
	tests := []struct{ src, want string }{
		{"[[route]]\nprefix = \"203.0.113.0/24\"\nvia = \"192.0.2.2\"\ntable = \"nosuch\"\n",
			`r.toml:8: route[0].table: "nosuch" is neither a table number nor a declared table name`},
		{"[[route]]\nprefix = \"203.0.113.0/24\"\nnexthop = [{ via = \"198.51.100.9\" }]\n",
			`r.toml:7: route[0].nexthop[0].via: 198.51.100.9 is not on any connected network`},
		{"[[route]]\nprefix = \"203.0.113.0/24\"\nvia = \"192.0.2.2\"\nnexthop = [{ via = \"192.0.2.3\" }]\n",
			`route[0].nexthop: an ECMP route names its gateways in nexthop only`},
		{"[[rule]]\nfrom = \"192.0.2.1/24\"\ntable = 100\n",
			`r.toml:6: rule[0].from: 192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?`},
		{"[[rule]]\nfrom = \"192.0.2.0/24\"\n",
			`rule[0].action: missing: lookup (with table), blackhole, unreachable or prohibit`},
		{"[[rule]]\npriority = 0\ntable = 100\n",
			`r.toml:6: rule[0].priority: 0 is out of range`},
		{"[[rule]]\niif = \"eth7\"\ntable = 100\n",
			`r.toml:6: rule[0].iif: "eth7" is not a configured interface`},
		{"[[rule]]\nfwmark = \"0x11/0x0f\"\ntable = 100\n",
			`rule[0].fwmark: "0x11/0x0f": mark has bits outside its mask`},
		{"[[rule]]\naction = \"blackhole\"\ntable = 100\n",
			`rule[0].table: a blackhole rule looks up no table`},
		{"[[table]]\nid = 254\nname = \"mine\"\n",
			`table[0].id: tables main (254), local (255) and default (253) are built in`},
		{"[[table]]\nid = 5\nname = \"a\"\n[[table]]\nid = 5\nname = \"b\"\n",
			`r.toml:9: table[1].id: table 5 is already declared in table[0]`},
		{"[[route]]\nprefix = \"203.0.113.0/24\"\ntype = \"blackhole\"\ntable = \"local\"\n",
			`route[0].table: the local table holds ferry's own addresses`},
		{"[[rule]]\npriority = 5\ntable = 9\n[[rule]]\npriority = 5\ntable = 9\n",
			`rule[1]: duplicates the rule on line 5`},
	}
	for _, tc := range tests {
		_, err := Parse("r.toml", []byte(base+tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

func TestParseRouteAndRuleWords(t *testing.T) {
	cfg, err := Parse("r.toml", []byte(routingCfg))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cfg.ParseRoute(strings.Fields("203.0.113.0/25 via 198.51.100.130 metric 5 table uplink2"))
	if err != nil || r.Dev != "r2" || r.Metric != 5 || r.Table != 100 {
		t.Errorf("route: %+v %v", r, err)
	}
	r, err = cfg.ParseRoute(strings.Fields("203.0.113.0/24 nexthop via 198.51.100.2 weight 2 nexthop via 198.51.100.130"))
	if err != nil || len(r.Nexthops) != 2 || r.Nexthops[0].Weight != 2 {
		t.Errorf("ecmp: %+v %v", r, err)
	}
	r, err = cfg.ParseRoute(strings.Fields("prohibit 203.0.113.0/24"))
	if err != nil || r.Type != "prohibit" {
		t.Errorf("prohibit: %+v %v", r, err)
	}
	if _, err := cfg.ParseRoute(strings.Fields("203.0.113.0/24 via 10.9.9.9")); err == nil || !strings.Contains(err.Error(), "route.via: 10.9.9.9 is not on any connected network") {
		t.Errorf("bad via: %v", err)
	}
	if _, err := cfg.ParseRoute(strings.Fields("203.0.113.1/24 dev r1")); err == nil || !strings.Contains(err.Error(), "did you mean 203.0.113.0/24") {
		t.Errorf("host bits: %v", err)
	}
	if r, err := cfg.ParseRouteDel(strings.Fields("203.0.113.0/24 metric 3")); err != nil || r.Metric != 3 || r.Type != "unicast" {
		t.Errorf("del: %+v %v", r, err)
	}
	ru, err := cfg.ParseRule(strings.Fields("pref 10 from 192.0.2.0/25 iif r0 fwmark 7 lookup uplink2"))
	if err != nil || ru.Priority != 10 || ru.Table != 100 || ru.Mark != 7 || ru.MarkMask != 0xffffffff || ru.IIf != "r0" {
		t.Errorf("rule: %+v %v", ru, err)
	}
	if _, err := cfg.ParseRule(strings.Fields("from 192.0.2.0/25 goto 5")); err == nil {
		t.Errorf("goto accepted (ferry has no goto rules, so no rule loops)")
	}
}
