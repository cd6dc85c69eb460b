package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/dataplane"
)

// Filter and connection tracking commands: show ruleset, reset counters,
// set add|del, show conntrack, flush conntrack, reload. Words follow nft
// and conntrack(8).
func handleFilter(s *controlServer, r *dataplane.Router, cfgPath string, log *slog.Logger) {
	s.Handle("show ruleset", func(args []string) (any, error) {
		if len(args) > 0 {
			return nil, errors.New("usage: show ruleset")
		}
		st, ok := r.Ruleset()
		if !ok {
			return nil, errors.New("no ruleset is loaded ([ruleset] file in the config)")
		}
		return st, nil
	})
	s.Handle("reset counters", func(args []string) (any, error) {
		if len(args) > 0 {
			return nil, errors.New("usage: reset counters")
		}
		return nil, r.ResetRulesetCounters()
	})
	setCmd := func(add bool) handler {
		return func(args []string) (any, error) {
			if len(args) < 2 {
				return nil, errors.New("usage: set add|del SET ELEMENT...")
			}
			return nil, r.SetElements(add, args[0], args[1:])
		}
	}
	s.Handle("set add", setCmd(true))
	s.Handle("set del", setCmd(false))
	s.Handle("show conntrack", func(args []string) (any, error) {
		f, err := dataplane.ParseConntrackFilter(args)
		if err != nil {
			return nil, err
		}
		return r.Conntrack(f), nil
	})
	s.Handle("flush conntrack", func(args []string) (any, error) {
		if len(args) > 0 {
			return nil, errors.New("usage: flush conntrack")
		}
		r.FlushConntrack()
		return nil, nil
	})
	s.Handle("show nat", func(args []string) (any, error) {
		if len(args) > 0 && args[0] == "sessions" {
			f, err := dataplane.ParseConntrackFilter(args[1:])
			if err != nil {
				return nil, err
			}
			return r.NATSessions(f), nil
		}
		if len(args) > 0 {
			return nil, errors.New("usage: show nat [sessions [filters]]")
		}
		return r.NAT(1000), nil
	})
	s.Handle("nat flush", func(args []string) (any, error) {
		r.FlushNAT()
		return nil, nil
	})
	s.Handle("reload", func(args []string) (any, error) {
		if len(args) > 0 {
			return nil, errors.New("usage: reload")
		}
		return reload(r, cfgPath, log)
	})
}

// reloadStatus is what `ferryctl reload` prints.
type reloadStatus struct {
	Ruleset string  `json:"ruleset"`
	Seconds float64 `json:"seconds"`
}

// reload reads the config file again and puts its ruleset in place. The
// running ruleset stays on any error, which names the file, line and what
// is wrong; connection tracking entries survive. Other config changes
// (interfaces, routes) need a restart: reload says so rather than half
// applying them.
func reload(r *dataplane.Router, cfgPath string, log *slog.Logger) (any, error) {
	start := time.Now()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		log.Error("reload failed; the running config stays", "err", err)
		return nil, err
	}
	if err := r.LoadRuleset(cfg.Ruleset.File); err != nil {
		log.Error("reload failed; the running ruleset stays", "err", err)
		return nil, err
	}
	log.Info("reloaded", "ruleset", cfg.Ruleset.File, "took", time.Since(start))
	return reloadStatus{Ruleset: cfg.Ruleset.File, Seconds: time.Since(start).Seconds()}, nil
}
