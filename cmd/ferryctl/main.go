// Command ferryctl inspects and changes a running ferryd over its unix
// socket: show interfaces|routes|rules|neighbors|stats, route get, route
// add|del|load, rule add|del.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-router/ferry/dataplane"
)

const defaultSocket = "/run/ferry/ferryd.sock"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: ferryctl [-s SOCKET] [-j] COMMAND

commands:
  show interfaces [NAME]   counters and drops by reason per port (alias: show int)
  show routes [table T|all]  a routing table, main by default (alias: show route)
  show rules               the policy rules, in the order they are tried
  show neighbors           the ARP table (aliases: show neigh, show arp)
  show stats               per-worker batches, packets and drops
  route get ADDR [from SRC] [iif IF] [mark M]
                           the rule, table, route and next hop a packet gets
  route add|del [TYPE] PREFIX [via GW] [dev IF] [metric N] [table T]
                [nexthop via GW [dev IF] [weight W]]...
                           TYPE: unicast (default), blackhole, unreachable, prohibit
  route load FILE [table T] [via GW] [dev IF] [metric N]
                           add every route in FILE (a prefix a line, optionally
                           followed by route words; gzip is fine) as one change
  rule add|del [priority N] [from P] [to P] [iif IF] [fwmark M[/MASK]]
               lookup T | blackhole | unreachable | prohibit
  show ruleset             the filter rules as nft list ruleset prints them,
                           with counters and set elements
  reset counters           zero the ruleset's counters
  set add|del SET ELEM...  add or remove elements of a named set (nft add element)
  show conntrack [proto P] [addr A[/N]] [port N] [state S] [limit N]
                           the connection table as conntrack -L prints it,
                           with counts by protocol and TCP state
  flush conntrack          empty the connection table (conntrack -F)
  show nat [sessions [FILTERS]]
                           source mappings and their counters; with sessions,
                           the translated connections (filters as show conntrack)
  nat flush                drop every translated connection and mapping
  reload                   read the config again and swap in its ruleset;
                           on any error the running ruleset stays
  help

-s defaults to $FERRY_SOCKET, else ` + defaultSocket + `; -j prints JSON.
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferryctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	def := defaultSocket
	if env := os.Getenv("FERRY_SOCKET"); env != "" {
		def = env
	}
	sock := fs.String("s", def, "ferryd control socket")
	asJSON := fs.Bool("j", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	words := fs.Args()
	if len(words) == 0 || words[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(words) == 0 {
			return 2
		}
		return 0
	}
	cmd, filter, ok := canonical(words)
	if !ok {
		fmt.Fprintf(stderr, "ferryctl: unknown command %q\n%s", strings.Join(words, " "), usage)
		return 2
	}
	raw, err := call(*sock, cmd)
	if err != nil {
		fmt.Fprintf(stderr, "ferryctl: %v\n", err)
		return 1
	}
	if *asJSON {
		fmt.Fprintf(stdout, "%s\n", raw)
		return 0
	}
	if err := render(stdout, cmd, filter, raw); err != nil {
		fmt.Fprintf(stderr, "ferryctl: %v\n", err)
		return 1
	}
	return 0
}

// canonical maps what the user typed to the server's command words.
func canonical(w []string) (cmd []string, filter string, ok bool) {
	if len(w) >= 2 && (w[0] == "route" || w[0] == "rule") {
		switch w[1] {
		case "get", "add", "del", "delete":
			if w[1] == "delete" {
				w = append([]string{w[0], "del"}, w[2:]...)
			}
			if w[0] == "rule" && w[1] == "get" {
				return nil, "", false
			}
			return w, "", len(w) > 2
		case "load":
			if w[0] != "route" || len(w) < 3 {
				return nil, "", false
			}
			// ferryd opens the file itself, from its own working directory.
			if abs, err := filepath.Abs(w[2]); err == nil {
				w = append([]string{"route", "load", abs}, w[3:]...)
			}
			return w, "", true
		}
		return nil, "", false
	}
	switch {
	case len(w) == 1 && w[0] == "reload":
		return w, "", true
	case len(w) == 2 && w[0] == "reset" && w[1] == "counters":
		return w, "", true
	case len(w) == 2 && w[0] == "flush" && w[1] == "conntrack":
		return w, "", true
	case len(w) == 2 && w[0] == "nat" && w[1] == "flush":
		return w, "", true
	case len(w) >= 4 && w[0] == "set" && (w[1] == "add" || w[1] == "del" || w[1] == "delete"):
		return append([]string{"set", w[1][:3]}, w[2:]...), "", true
	}
	if len(w) < 2 || w[0] != "show" {
		return nil, "", false
	}
	switch w[1] {
	case "interfaces", "interface", "int":
		if len(w) == 3 {
			filter = w[2]
		} else if len(w) > 3 {
			return nil, "", false
		}
		return []string{"show", "interfaces"}, filter, true
	case "routes", "route":
		return append([]string{"show", "routes"}, w[2:]...), "", len(w) == 2 || (len(w) == 4 && w[2] == "table")
	case "rules", "rule":
		return []string{"show", "rules"}, "", len(w) == 2
	case "neighbors", "neighbours", "neigh", "arp":
		return []string{"show", "neighbors"}, "", len(w) == 2
	case "stats":
		return []string{"show", "stats"}, "", len(w) == 2
	case "ruleset":
		return []string{"show", "ruleset"}, "", len(w) == 2
	case "conntrack", "ct":
		return append([]string{"show", "conntrack"}, w[2:]...), "", true
	case "nat":
		return append([]string{"show", "nat"}, w[2:]...), "", true
	}
	return nil, "", false
}

func call(sock string, cmd []string) (json.RawMessage, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot reach ferryd at %s: %v (is ferryd running? is -s right?)", sock, err)
	}
	defer c.Close()
	// A whole-table load parses and builds 900k prefixes in ferryd: 4.5 s
	// on a quiet 2-core VM, past 10 s on a busy one.
	wait := 10 * time.Second
	if len(cmd) > 1 && cmd[0] == "route" && cmd[1] == "load" {
		wait = 2 * time.Minute
	}
	c.SetDeadline(time.Now().Add(wait))
	req, _ := json.Marshal(map[string]any{"cmd": cmd[0], "args": cmd[1:]})
	if _, err := c.Write(append(req, '\n')); err != nil {
		return nil, err
	}
	var resp struct {
		OK    bool            `json:"ok"`
		Data  json.RawMessage `json:"data"`
		Error string          `json:"error"`
	}
	line, err := bufio.NewReaderSize(c, 1<<20).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("reading ferryd's answer: %v", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("bad answer from ferryd: %v", err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("ferryd: %s", resp.Error)
	}
	return resp.Data, nil
}

func render(out io.Writer, cmd []string, filter string, raw json.RawMessage) error {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	defer tw.Flush()
	switch cmd[0] {
	case "route", "rule":
		switch cmd[1] {
		case "get":
			var g dataplane.RouteGetStatus
			if err := json.Unmarshal(raw, &g); err != nil {
				return err
			}
			renderRouteGet(out, g)
		case "load":
			var l struct {
				Loaded  int     `json:"loaded"`
				Skipped int     `json:"skipped"`
				Table   string  `json:"table"`
				Routes  int     `json:"routes"`
				Seconds float64 `json:"seconds"`
				Parse   float64 `json:"parse_seconds"`
			}
			if err := json.Unmarshal(raw, &l); err != nil {
				return err
			}
			fmt.Fprintf(out, "loaded %d routes into table %s (%d prefixes now) in %.2fs (file %.2fs, table build and swap %.2fs)", l.Loaded, l.Table, l.Routes, l.Seconds, l.Parse, l.Seconds-l.Parse)
			if l.Skipped > 0 {
				fmt.Fprintf(out, "; skipped %d IPv6 prefixes (IPv4 gateway)", l.Skipped)
			}
			fmt.Fprintln(out)
		}
		return nil
	}
	switch cmd[0] {
	case "reload":
		var s struct {
			Ruleset string  `json:"ruleset"`
			Seconds float64 `json:"seconds"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		if s.Ruleset == "" {
			fmt.Fprintf(out, "reloaded: no ruleset (everything is accepted, nothing tracked)\n")
		} else {
			fmt.Fprintf(out, "reloaded ruleset %s in %.3fs\n", s.Ruleset, s.Seconds)
		}
		return nil
	case "reset", "flush", "set", "nat":
		return nil
	}
	switch cmd[1] {
	case "ruleset":
		var s dataplane.RulesetStatus
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(out, "# %s, loaded %s\n%s", s.File, s.Loaded.Format(time.RFC3339), s.Listing)
	case "nat":
		if len(cmd) > 2 && cmd[2] == "sessions" {
			var s dataplane.ConntrackStatus
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			renderConntrack(out, s)
			return nil
		}
		var s dataplane.NATStatus
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		for _, m := range s.Mappings {
			fmt.Fprintln(out, m)
		}
		if s.Truncated {
			fmt.Fprintln(out, "... (more mappings)")
		}
		st := s.Stats
		fmt.Fprintf(out, "# %d mappings (tcp %d, udp %d, icmp %d), filtering %s; created %d, freed %d; pool exhausted %d, table full %d, refused inbound %d\n",
			st.Mappings, st.TCP, st.UDP, st.ICMP, s.Filtering, st.Created, st.Freed, st.PoolExhausted, st.TableFull, st.Refused)
	case "conntrack":
		var s dataplane.ConntrackStatus
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		renderConntrack(out, s)
	case "interfaces":
		var rows []dataplane.InterfaceStatus
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		found := false
		for _, r := range rows {
			if filter != "" && r.Name != filter {
				continue
			}
			found = true
			state := "DOWN"
			if r.Up {
				state = "UP"
			}
			fmt.Fprintf(tw, "%d: %s\t%s\tmtu %d\t%s\t%s\n", r.Index, r.Name, state, r.MTU, r.MAC, strings.Join(r.Addresses, " "))
			fmt.Fprintf(tw, "    rx\t%d packets\t%d bytes\n", r.RxPackets, r.RxBytes)
			fmt.Fprintf(tw, "    tx\t%d packets\t%d bytes\n", r.TxPackets, r.TxBytes)
			v := r.IPv4
			fmt.Fprintf(tw, "    ipv4\trp_filter %d send_redirects %d accept_source_route %d bc_forwarding %d\n",
				v.RPFilter, b2i(v.SendRedirects), b2i(v.AcceptSourceRoute), b2i(v.BCForwarding))
			for _, k := range sortedKeys(r.Drops) {
				fmt.Fprintf(tw, "    drop\t%s\t%d\n", k, r.Drops[k])
			}
		}
		if filter != "" && !found {
			return fmt.Errorf("no interface %q", filter)
		}
	case "routes":
		var rows []dataplane.RouteStatus
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		all := len(cmd) == 4 && cmd[3] == "all"
		for _, r := range rows {
			fmt.Fprintln(tw, routeLine(r, all))
		}
	case "rules":
		var rows []dataplane.RuleStatus
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			fmt.Fprintf(out, "%d:\t%s %s\n", r.Priority, r.Selector, r.Action) // ip rule's layout: a literal tab
		}
	case "neighbors":
		var rows []dataplane.NeighborStatus
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			mac := ""
			if r.MAC != "" {
				mac = "lladdr " + r.MAC
			}
			q := ""
			if r.Queued > 0 {
				q = fmt.Sprintf("queued %d", r.Queued)
			}
			fmt.Fprintf(tw, "%s\tdev %s\t%s\t%s\t%s\n", r.IP, r.Dev, mac, r.State, q)
		}
	case "stats":
		var rows []dataplane.WorkerStatus
		if err := json.Unmarshal(raw, &rows); err != nil {
			return err
		}
		fmt.Fprintf(tw, "worker\tbatches\tpackets\tavg batch\tforwarded\tlocal\twakeups\n")
		for _, r := range rows {
			id := fmt.Sprint(r.ID)
			if r.ID < 0 {
				id = "control"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%d\t%d\t%d\n", id, r.Batches, r.Packets, r.AvgBatch, r.Forwarded, r.Local, r.Wakeups)
		}
		for _, r := range rows {
			if r.ReasmLimit > 0 {
				fmt.Fprintf(tw, "  worker %d reassembly\t%d datagrams\t%d bytes\tof %d\n", r.ID, r.ReasmDatagrams, r.ReasmBytes, r.ReasmLimit)
			}
		}
		for _, r := range rows {
			for _, k := range sortedKeys(r.Drops) {
				id := fmt.Sprint(r.ID)
				if r.ID < 0 {
					id = "control"
				}
				fmt.Fprintf(tw, "  worker %s drop\t%s\t%d\n", id, k, r.Drops[k])
			}
		}
	}
	return nil
}

// b2i prints a switch as Linux's sysctls do.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// routeLine prints a route as `ip route` does.
func routeLine(r dataplane.RouteStatus, withTable bool) string {
	var b strings.Builder
	switch r.Type {
	case "unicast", "connected":
		b.WriteString(r.Prefix)
	default:
		b.WriteString(r.Type + " " + r.Prefix)
	}
	if r.Via != "" {
		b.WriteString(" via " + r.Via)
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if withTable && r.Table != "" {
		b.WriteString(" table " + r.Table)
	}
	switch r.Type {
	case "connected":
		b.WriteString(" proto kernel scope link")
	case "local":
		b.WriteString(" proto kernel scope host")
	default:
		b.WriteString(" proto static")
	}
	fmt.Fprintf(&b, " metric %d", r.Metric)
	for _, h := range r.Nexthops {
		fmt.Fprintf(&b, "\n\tnexthop via %s dev %s weight %d", h.Via, h.Dev, h.Weight)
	}
	return b.String()
}

func renderRouteGet(out io.Writer, g dataplane.RouteGetStatus) {
	var b strings.Builder
	switch g.Type {
	case "unicast":
		b.WriteString(g.Dst)
	default:
		b.WriteString(g.Type + " " + g.Dst)
	}
	if g.Via != "" {
		b.WriteString(" via " + g.Via)
	}
	if g.Dev != "" {
		b.WriteString(" dev " + g.Dev)
	}
	if g.Table != "" {
		b.WriteString(" table " + g.Table)
	}
	if g.Src != "" {
		b.WriteString(" src " + g.Src)
	}
	fmt.Fprintln(out, b.String())
	fmt.Fprintf(out, "    rule %d: %s %s\n", g.Rule.Priority, g.Rule.Selector, g.Rule.Action)
	if g.Route != nil {
		fmt.Fprintf(out, "    route %s\n", strings.ReplaceAll(routeLine(*g.Route, false), "\n", "\n    "))
	}
	if g.Multipath {
		fmt.Fprintln(out, "    multipath: the next hop shown is the one for a flow with these addresses and no ports")
	}
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// renderConntrack prints the entries as conntrack -L does, then the counts.
func renderConntrack(out io.Writer, s dataplane.ConntrackStatus) {
	for _, e := range s.Entries {
		fmt.Fprintln(out, e)
	}
	if s.Truncate {
		fmt.Fprintf(out, "... %d more (limit N shows more)\n", s.Matched-len(s.Entries))
	}
	st := s.Stats
	if !s.Active {
		fmt.Fprintln(out, "# not tracking: no ruleset, or no rule matches ct state or ct mark")
	}
	fmt.Fprintf(out, "# %d matched; table %d of %d entries: tcp %d, udp %d, icmp %d, other %d; assured %d, unreplied %d\n",
		s.Matched, st.Entries, st.Capacity, st.TCP, st.UDP, st.ICMP, st.Other, st.Assured, st.Unreplied)
	if len(st.TCPStates) > 0 {
		fmt.Fprint(out, "# tcp states:")
		for _, k := range sortedKeys(toU64(st.TCPStates)) {
			fmt.Fprintf(out, " %s %d", k, st.TCPStates[k])
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "# inserted %d, expired %d, early drops %d, invalid %d, clashes %d, full %d\n",
		st.Inserts, st.Expired, st.EarlyDrops, st.Invalid, st.Clashes, st.Full)
}

func toU64(m map[string]int) map[string]uint64 {
	r := make(map[string]uint64, len(m))
	for k, v := range m {
		r[k] = uint64(v)
	}
	return r
}
