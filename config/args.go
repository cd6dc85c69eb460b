package config

import (
	"fmt"
	"strconv"
	"strings"
)

// The route and rule commands of ferryctl take words in the order `ip
// route` and `ip rule` use; these turn them into the same Route and Rule a
// config file gives, checked by the same code.

// ParseRoute reads `[TYPE] PREFIX [via GW] [dev IF] [metric N] [table T]
// [nexthop via GW [dev IF] [weight W]]...` against cfg's interfaces and
// tables.
func (cfg *Config) ParseRoute(words []string) (Route, error) {
	rr, err := routeWords(words)
	if err != nil {
		return Route{}, err
	}
	c := &checker{lines: map[string]int{}}
	r, ok := c.route("route", rr, cfg)
	if !ok {
		return Route{}, c.err()
	}
	return r, nil
}

// ParseRouteDel reads the words of `route del`: as ParseRoute, but the
// prefix (with metric and table) is enough to name a route.
func (cfg *Config) ParseRouteDel(words []string) (Route, error) {
	rr, err := routeWords(words)
	if err != nil {
		return Route{}, err
	}
	bare := rr.Via == "" && rr.Dev == "" && len(rr.Nexthop) == 0 && (rr.Type == "" || rr.Type == "unicast")
	if bare {
		rr.Type = "blackhole" // checked as a route without gateway; the type does not select
	}
	c := &checker{lines: map[string]int{}}
	r, ok := c.route("route", rr, cfg)
	if !ok {
		return Route{}, c.err()
	}
	if bare {
		r.Type = "unicast"
	}
	return r, nil
}

func routeWords(words []string) (rawRoute, error) {
	var rr rawRoute
	w := words
	if len(w) > 0 {
		switch w[0] {
		case "unicast", "blackhole", "unreachable", "prohibit":
			rr.Type, w = w[0], w[1:]
		}
	}
	if len(w) == 0 {
		return rr, fmt.Errorf("missing prefix")
	}
	rr.Prefix, w = w[0], w[1:]
	if rr.Prefix == "default" {
		rr.Prefix = "0.0.0.0/0"
	}
	for len(w) > 0 {
		if w[0] == "nexthop" {
			var nh rawNexthop
			w = w[1:]
			for len(w) >= 2 && w[0] != "nexthop" {
				switch w[0] {
				case "via":
					nh.Via = w[1]
				case "dev":
					nh.Dev = w[1]
				case "weight":
					n, err := strconv.ParseInt(w[1], 10, 64)
					if err != nil {
						return rr, fmt.Errorf("weight %q is not a number", w[1])
					}
					nh.Weight = &n
				default:
					return rr, fmt.Errorf("nexthop: unknown word %q (want via, dev, weight)", w[0])
				}
				w = w[2:]
			}
			if len(w) == 1 {
				return rr, fmt.Errorf("%q needs a value", w[0])
			}
			rr.Nexthop = append(rr.Nexthop, nh)
			continue
		}
		if len(w) < 2 {
			return rr, fmt.Errorf("%q needs a value", w[0])
		}
		switch w[0] {
		case "via":
			rr.Via = w[1]
		case "dev":
			rr.Dev = w[1]
		case "metric", "preference":
			n, err := strconv.ParseInt(w[1], 10, 64)
			if err != nil {
				return rr, fmt.Errorf("metric %q is not a number", w[1])
			}
			rr.Metric = n
		case "table":
			rr.Table = w[1]
		case "type":
			rr.Type = w[1]
		default:
			return rr, fmt.Errorf("unknown word %q (want via, dev, metric, table, nexthop)", w[0])
		}
		w = w[2:]
	}
	return rr, nil
}

// ParseRule reads `[priority N] [from P] [to P] [iif IF] [fwmark M[/MASK]]
// (lookup T | blackhole | unreachable | prohibit)`; pref and prio are
// accepted for priority and table for lookup, as ip rule does.
func (cfg *Config) ParseRule(words []string) (Rule, error) {
	var rr rawRule
	w := words
	for len(w) > 0 {
		switch w[0] {
		case "blackhole", "unreachable", "prohibit":
			rr.Action, w = w[0], w[1:]
			continue
		}
		if len(w) < 2 {
			return Rule{}, fmt.Errorf("%q needs a value", w[0])
		}
		switch w[0] {
		case "priority", "pref", "prio":
			n, err := strconv.ParseInt(w[1], 0, 64)
			if err != nil {
				return Rule{}, fmt.Errorf("priority %q is not a number", w[1])
			}
			rr.Priority = &n
		case "from":
			rr.From = w[1]
		case "to":
			rr.To = w[1]
		case "iif":
			rr.IIf = w[1]
		case "fwmark":
			rr.FwMark = w[1]
		case "lookup", "table":
			rr.Action, rr.Table = "lookup", w[1]
		default:
			return Rule{}, fmt.Errorf("unknown word %q (want priority, from, to, iif, fwmark, lookup, blackhole, unreachable, prohibit)", w[0])
		}
		w = w[2:]
	}
	c := &checker{lines: map[string]int{}}
	r, ok := c.rule("rule", rr, cfg)
	if !ok {
		return Rule{}, c.err()
	}
	return r, nil
}

func (c *checker) err() error {
	msgs := make([]string, len(c.problems))
	for i, p := range c.problems {
		msgs[i] = p.Key + ": " + p.Msg
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
