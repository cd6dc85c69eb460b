package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/dataplane"
)

// Routing commands: show routes/rules, route get/add/del/load, rule
// add/del. Words follow `ip route` and `ip rule`; they are checked by the
// config package, so a route typed at ferryctl meets the same checks and
// messages as one in the config file.
func handleRouting(s *controlServer, r *dataplane.Router, cfg *config.Config) {
	s.Handle("show routes", func(args []string) (any, error) {
		switch {
		case len(args) == 0:
			return r.Routes(), nil
		case len(args) == 2 && args[0] == "table" && args[1] == "all":
			var rows []dataplane.RouteStatus
			for _, id := range r.TableIDs() {
				t, _ := r.TableRoutes(id)
				rows = append(rows, t...)
			}
			return rows, nil
		case len(args) == 2 && args[0] == "table":
			id, err := cfg.TableID(args[1])
			if err != nil {
				return nil, err
			}
			rows, ok := r.TableRoutes(id)
			if !ok {
				return nil, fmt.Errorf("table %s does not exist", args[1])
			}
			return rows, nil
		}
		return nil, errors.New("usage: show routes [table ID|NAME|all]")
	})
	s.Handle("show rules", func(args []string) (any, error) {
		if len(args) > 0 {
			return nil, errors.New("usage: show rules")
		}
		return r.Rules(), nil
	})
	s.Handle("route get", func(args []string) (any, error) { return routeGet(r, args) })
	s.Handle("route add", func(args []string) (any, error) {
		rt, err := cfg.ParseRoute(args)
		if err != nil {
			return nil, err
		}
		return nil, r.AddRoute(rt)
	})
	s.Handle("route del", func(args []string) (any, error) {
		rt, err := cfg.ParseRouteDel(args)
		if err != nil {
			return nil, err
		}
		return nil, r.DeleteRoute(rt)
	})
	s.Handle("route load", func(args []string) (any, error) {
		// A million-route load is seconds of CPU; at a low priority it
		// cannot take the CPU from the workers (see background).
		var res any
		err := background(func() error {
			var err error
			res, err = routeLoad(r, cfg, args)
			return err
		})
		return res, err
	})
	s.Handle("rule add", func(args []string) (any, error) {
		rl, err := cfg.ParseRule(args)
		if err != nil {
			return nil, err
		}
		return nil, r.AddRule(rl)
	})
	s.Handle("rule del", func(args []string) (any, error) {
		rl, err := cfg.ParseRule(args)
		if err != nil {
			return nil, err
		}
		return nil, r.DeleteRule(rl)
	})
}

const routeGetUsage = "usage: route get ADDR [from SRC] [iif IF] [mark|fwmark M]"

func routeGet(r *dataplane.Router, args []string) (any, error) {
	if len(args) == 0 || len(args)%2 == 0 {
		return nil, errors.New(routeGetUsage)
	}
	dst, err := netip.ParseAddr(args[0])
	if err != nil {
		return nil, fmt.Errorf("%q is not an address", args[0])
	}
	var src netip.Addr
	var iif string
	var mark uint32
	for w := args[1:]; len(w) >= 2; w = w[2:] {
		switch w[0] {
		case "from":
			if src, err = netip.ParseAddr(w[1]); err != nil {
				return nil, fmt.Errorf("from %q is not an address", w[1])
			}
		case "iif":
			iif = w[1]
		case "mark", "fwmark":
			if mark, _, err = config.ParseMark(w[1]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown word %q; %s", w[0], routeGetUsage)
		}
	}
	return r.RouteGet(dst, src, iif, mark)
}

// LoadResult is the answer to route load.
type LoadResult struct {
	Loaded  int     `json:"loaded"`  // routes read from the file
	Skipped int     `json:"skipped"` // IPv6 prefixes skipped for an IPv4 gateway
	Table   string  `json:"table"`   // table they went into
	Routes  int     `json:"routes"`  // prefixes in the table afterwards
	Seconds float64 `json:"seconds"` // parse, build and swap
	// ParseSeconds is the part spent reading and checking the file.
	ParseSeconds float64 `json:"parse_seconds"`
}

const routeLoadUsage = "usage: route load FILE [table T] [via GW] [dev IF] [metric N] [type T]"

// routeLoad reads FILE (plain or gzip): one route per line, a prefix
// optionally followed by route words ("198.51.100.0/24 via 192.0.2.9"),
// with '#' comments. The command's own words are every line's defaults. The
// file is read by ferryd, so the path is ferryd's (ferryctl sends an
// absolute one). Bare IPv6 prefixes are skipped, and counted, when the
// default gateway is IPv4, so a mixed full-table file loads. Every line is checked before anything changes; the first
// errors are reported with their line numbers and nothing is loaded.
func routeLoad(r *dataplane.Router, cfg *config.Config, args []string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New(routeLoadUsage)
	}
	start := time.Now()
	path, defaults := args[0], args[1:]
	for i := 0; i < len(defaults); i += 2 {
		if defaults[i] == "nexthop" {
			return nil, errors.New("route load: ECMP routes are added one by one with route add")
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The defaults must make a route by themselves unless every line
	// brings its own gateway; a bare prefix then meets tmplErr.
	tmpl, tmplErr := cfg.ParseRoute(append([]string{"0.0.0.0/0"}, defaults...))
	if tmplErr != nil && (slices.Contains(defaults, "via") || slices.Contains(defaults, "dev") || len(defaults) > 0 && slices.Contains([]string{"blackhole", "unreachable", "prohibit"}, defaults[0])) {
		return nil, fmt.Errorf("route load: %v", tmplErr)
	}
	if tmplErr != nil {
		tmpl.Table = config.TableMain
		if i := slices.Index(defaults, "table"); i >= 0 && i+1 < len(defaults) {
			if tmpl.Table, err = cfg.TableID(defaults[i+1]); err != nil {
				return nil, fmt.Errorf("route load: %v", err)
			}
		}
	}
	in := bufio.NewReaderSize(f, 1<<16)
	var rd io.Reader = in
	if magic, _ := in.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		rd = gz
	}
	sc := bufio.NewScanner(rd)
	var routes []config.Route
	var problems []string
	line, skipped := 0, 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		var rt config.Route
		if len(fields) == 1 {
			// The common case, a bare prefix, skips the word parser.
			p, err := netip.ParsePrefix(fields[0])
			if err == nil && tmpl.Via.IsValid() && p.Addr().Is4() != tmpl.Via.Is4() {
				// A mixed table file: a gateway of one family cannot
				// carry the other's prefixes.
				skipped++
				continue
			}
			switch {
			case err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "":
				err = fmt.Errorf("%q is not a prefix", fields[0])
			case p != p.Masked():
				err = fmt.Errorf("%s has host bits set; did you mean %s?", p, p.Masked())
			}
			if err == nil && tmplErr != nil {
				err = fmt.Errorf("a bare prefix needs a gateway: give via or dev on the line or to route load")
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %v", path, line, err))
			} else {
				rt = tmpl
				rt.Prefix = p
			}
		} else {
			if slices.Contains(fields[1:], "table") {
				problems = append(problems, fmt.Sprintf("%s:%d: a loaded route cannot name a table; give it to route load", path, line))
			} else {
				rt, err = cfg.ParseRoute(append(append([]string{fields[0]}, defaults...), fields[1:]...))
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: %v", path, line, err))
				}
			}
		}
		if len(problems) >= 10 {
			problems = append(problems, "(stopped after 10 errors)")
			break
		}
		if len(problems) == 0 {
			routes = append(routes, rt)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: line %d: %v", path, line+1, err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing loaded:\n%s", strings.Join(problems, "\n"))
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("%s: no routes in the file", path)
	}
	parsed := time.Now()
	n, err := r.LoadRoutes(tmpl.Table, routes)
	if err != nil {
		return nil, fmt.Errorf("nothing loaded: %v", err)
	}
	return LoadResult{Loaded: len(routes), Skipped: skipped, Table: cfg.TableName(tmpl.Table), Routes: n, Seconds: time.Since(start).Seconds(), ParseSeconds: parsed.Sub(start).Seconds()}, nil
}

// background runs fn on an OS thread of its own at nice 19, so control-plane
// bulk work yields the CPU to forwarding. The thread is discarded afterwards
// rather than returned to the runtime with its lowered priority.
func background(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19); err != nil {
			errc <- fmt.Errorf("lowering priority: %w", err)
			return
		}
		// The collector's mark workers would take the Ps the workers need
		// back the instant a packet wakes them (measured: replies held
		// up to a second during a full-table load); a load's garbage is
		// collected afterwards, once.
		old := debug.SetGCPercent(-1)
		err := fn()
		debug.SetGCPercent(old)
		errc <- err
		// Collect the load's garbage now and hand the pages back, so the
		// resident size reflects the tables rather than the load.
		debug.FreeOSMemory()
	}()
	return <-errc
}
