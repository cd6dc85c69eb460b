package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults for the [dataplane] and [control] sections.
const (
	DefaultBatchSize = 64
	// Ring geometry is chosen per port by iface when not configured (0):
	// slots for the link's MTU frame, 4 MiB of them per ring.
	DefaultRingFrames = 0
	DefaultFrameSize  = 0
	DefaultSocket     = "/run/ferry/ferryd.sock"
	DefaultBusyPollUS = 100
)

// The file as TOML sees it. Addresses stay strings here so that a bad one
// is reported by ferry with its line, not by the decoder.
type rawFile struct {
	Dataplane struct {
		Workers    *int   `toml:"workers"`
		BatchSize  *int   `toml:"batch_size"`
		RingFrames *int   `toml:"ring_frames"`
		FrameSize  *int   `toml:"frame_size"`
		BusyPoll   *int   `toml:"busy_poll_us"`
		Mode       string `toml:"mode"`
	} `toml:"dataplane"`
	Control struct {
		Socket string `toml:"socket"`
	} `toml:"control"`
	Metrics struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
	Interface []struct {
		Name      string   `toml:"name"`
		Kind      string   `toml:"kind"`
		Addresses []string `toml:"addresses"`
		MTU       int      `toml:"mtu"`
		MAC       string   `toml:"mac"`
		KernelRx  bool     `toml:"kernel_rx"`
		// Per-port IPv4 settings: pointers so that absent means default.
		AcceptSourceRoute *bool  `toml:"accept_source_route"`
		BCForwarding      *bool  `toml:"bc_forwarding"`
		SendRedirects     *bool  `toml:"send_redirects"`
		RPFilter          *int   `toml:"rp_filter"`
		RA                *rawRA `toml:"ra"`
		// TUN and TAP
		Owner      string `toml:"owner"`
		Group      string `toml:"group"`
		ClampMSS   *bool  `toml:"clamp_mss"`
		ClampMSSTo int    `toml:"clamp_mss_to"`
	} `toml:"interface"`
	Table    []rawTable `toml:"table"`
	Route    []rawRoute `toml:"route"`
	Rule     []rawRule  `toml:"rule"`
	Neighbor []struct {
		IP  string `toml:"ip"`
		MAC string `toml:"mac"`
		Dev string `toml:"dev"`
	} `toml:"neighbor"`
	Ruleset struct {
		File string `toml:"file"`
	} `toml:"ruleset"`
	Conntrack struct {
		Max      *int           `toml:"max"`
		TCPLoose *bool          `toml:"tcp_loose"`
		Timeouts map[string]any `toml:"timeouts"`
	} `toml:"conntrack"`
	NAT struct {
		Filtering   string `toml:"filtering"`
		MaxMappings *int   `toml:"max_mappings"`
	} `toml:"nat"`
}

type rawTable struct {
	ID   *int64 `toml:"id"`
	Name string `toml:"name"`
}

type rawRoute struct {
	Prefix  string       `toml:"prefix"`
	Via     string       `toml:"via"`
	Dev     string       `toml:"dev"`
	Metric  int64        `toml:"metric"`
	Type    string       `toml:"type"`
	Table   any          `toml:"table"` // id or name
	Nexthop []rawNexthop `toml:"nexthop"`
}

type rawNexthop struct {
	Via    string `toml:"via"`
	Dev    string `toml:"dev"`
	Weight *int64 `toml:"weight"`
}

type rawRule struct {
	Priority *int64 `toml:"priority"`
	From     string `toml:"from"`
	To       string `toml:"to"`
	IIf      string `toml:"iif"`
	FwMark   any    `toml:"fwmark"` // 7, "0x7" or "0x7/0xff"
	Action   string `toml:"action"`
	Table    any    `toml:"table"`
}

// Error is every problem found in a config file, each naming its line and
// key, so that a user fixes them all in one pass.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one mistake.
type Problem struct {
	Line int    // 0 when the key is missing altogether
	Key  string // e.g. route[1].via
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s: %s", e.File, p.Line, p.Key, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s: %s", e.File, p.Key, p.Msg)
		}
	}
	return b.String()
}

// Load reads and checks the config at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse checks a config held in memory; path is used in messages.
func Parse(path string, data []byte) (*Config, error) {
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		var ppe *toml.ParseError
		if errors.As(err, &ppe) {
			pe = *ppe
		}
		if ppe != nil || errors.As(err, &pe) {
			msg := pe.Message
			if msg == "" {
				// Decoding errors (wrong types) keep their text inside
				// Error(), behind a "toml: line N (last key ...): " prefix.
				msg = pe.Error()
				if i := strings.Index(msg, "): "); i >= 0 {
					msg = msg[i+3:]
				}
			}
			return nil, &Error{File: path, Problems: []Problem{{Line: pe.Position.Line, Key: keyOr(pe.LastKey, "syntax"), Msg: msg}}}
		}
		// Type mismatches come as plain text: "toml: line N (last key "k"): msg".
		if m := decodeErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: path, Problems: []Problem{{Line: line, Key: m[2], Msg: m[3]}}}
		}
		return nil, &Error{File: path, Problems: []Problem{{Key: "syntax", Msg: err.Error()}}}
	}
	c := &checker{file: path, lines: keyLines(string(data))}
	for _, k := range md.Undecoded() {
		c.bad(displayKey(k), "unknown key")
	}
	cfg := c.build(&raw)
	if len(c.problems) > 0 {
		sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Line < c.problems[j].Line })
		return nil, &Error{File: path, Problems: c.problems}
	}
	return cfg, nil
}

var decodeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func keyOr(k, def string) string {
	if k == "" {
		return def
	}
	return k
}

// displayKey turns the decoder's key (interface.addresses within the
// second [[interface]]) into ferry's form, interface[1].addresses. The
// decoder does not say which table of an array the key sat in, so
// keyLines' own numbering is used to find it.
func displayKey(k toml.Key) string { return strings.Join(k, ".") }

// keyLines maps keys to the line they are set on: "dataplane.workers",
// "interface[0].name", and "interface[0]" for the table header. It reads
// the file line by line, which covers the layout the example config uses
// (one key per line); a key it cannot place is reported without a line.
func keyLines(src string) map[string]int {
	lines := map[string]int{}
	counts := map[string]int{}
	table := ""
	for i, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(stripComment(l))
		switch {
		case strings.HasPrefix(l, "[["):
			name := strings.TrimSpace(strings.Trim(l, "[]"))
			table = fmt.Sprintf("%s[%d]", name, counts[name])
			counts[name]++
			lines[table] = i + 1
		case strings.HasPrefix(l, "["):
			table = strings.TrimSpace(strings.Trim(l, "[]"))
			// [interface.ra] is a sub-table of the last [[interface]].
			if dot := strings.IndexByte(table, '.'); dot > 0 && counts[table[:dot]] > 0 {
				table = fmt.Sprintf("%s[%d]%s", table[:dot], counts[table[:dot]]-1, table[dot:])
			}
			lines[table] = i + 1
		default:
			if eq := strings.Index(l, "="); eq > 0 {
				key := strings.Trim(strings.TrimSpace(l[:eq]), `"`)
				full := key
				if table != "" {
					full = table + "." + key
				}
				if _, dup := lines[full]; !dup {
					lines[full] = i + 1
				}
				// unknown keys are reported by the decoder without the
				// array index; remember the first line for that form too.
				plain := stripIndex(table)
				if plain != "" {
					plain += "."
				}
				if _, dup := lines[plain+key]; !dup {
					lines[plain+key] = i + 1
				}
			}
		}
	}
	return lines
}

func stripIndex(t string) string {
	if i := strings.IndexByte(t, '['); i >= 0 {
		return t[:i]
	}
	return t
}

func stripComment(l string) string {
	inStr := false
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '"':
			inStr = !inStr
		case '#':
			if !inStr {
				return l[:i]
			}
		}
	}
	return l
}

type checker struct {
	file     string
	lines    map[string]int
	problems []Problem
}

func (c *checker) bad(key, format string, args ...any) {
	// A key with no line of its own (inside an inline table) is placed on
	// the line of the nearest enclosing key or table that has one.
	line := 0
	for k := key; k != "" && line == 0; {
		line = c.lines[k]
		i := strings.LastIndexAny(k, ".[")
		if i <= 0 {
			break
		}
		k = k[:i]
	}
	c.problems = append(c.problems, Problem{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) build(raw *rawFile) *Config {
	cfg := &Config{File: c.file}
	c.dataplane(raw, cfg)
	cfg.Control.Socket = raw.Control.Socket
	if cfg.Control.Socket == "" {
		cfg.Control.Socket = DefaultSocket
	}
	c.metrics(raw, cfg)
	c.interfaces(raw, cfg)
	if cfg.Dataplane.Mode == "io-only" && len(raw.Interface) != 2 {
		c.bad("dataplane.mode", "io-only cross-connects exactly two interfaces, not %d", len(raw.Interface))
	}
	c.tables(raw, cfg)
	c.routes(raw, cfg)
	c.rules(raw, cfg)
	c.neighbors(raw, cfg)
	c.ruleset(raw, cfg)
	c.conntrack(raw, cfg)
	c.nat(raw, cfg)
	return cfg
}

func (c *checker) dataplane(raw *rawFile, cfg *Config) {
	d := &cfg.Dataplane
	get := func(key string, v *int, def, lo, hi int) int {
		if v == nil {
			return def
		}
		if *v < lo || *v > hi {
			c.bad("dataplane."+key, "%d is out of range %d..%d", *v, lo, hi)
		}
		return *v
	}
	d.Workers = get("workers", raw.Dataplane.Workers, runtime.NumCPU(), 1, 64)
	d.BatchSize = get("batch_size", raw.Dataplane.BatchSize, DefaultBatchSize, 1, 256)
	d.RingFrames = get("ring_frames", raw.Dataplane.RingFrames, DefaultRingFrames, 16, 65536)
	d.FrameSize = get("frame_size", raw.Dataplane.FrameSize, DefaultFrameSize, 2048, 1<<20)
	d.BusyPoll = time.Duration(get("busy_poll_us", raw.Dataplane.BusyPoll, DefaultBusyPollUS, 0, 10000)) * time.Microsecond
	switch d.Mode = raw.Dataplane.Mode; d.Mode {
	case "":
		d.Mode = "router"
	case "router", "io-only":
	default:
		c.bad("dataplane.mode", "%q is not a mode (\"router\", or \"io-only\" for benchmarks)", d.Mode)
	}
	if raw.Dataplane.FrameSize != nil && d.FrameSize%16 != 0 {
		c.bad("dataplane.frame_size", "%d is not a multiple of 16 (TPACKET_ALIGNMENT)", d.FrameSize)
	}
}

func (c *checker) interfaces(raw *rawFile, cfg *Config) {
	if len(raw.Interface) == 0 {
		c.bad("interface", "no [[interface]] configured: ferry needs at least one port")
	}
	names := map[string]string{}
	owners := map[netip.Addr]string{}
	for i, ri := range raw.Interface {
		t := fmt.Sprintf("interface[%d]", i)
		ifc := Interface{Name: ri.Name, Kind: ri.Kind, MTU: ri.MTU, KernelRx: ri.KernelRx, Line: c.lines[t]}
		switch {
		case ri.Name == "":
			c.bad(t+".name", "missing: name the Linux interface")
		case len(ri.Name) > 15 || strings.ContainsAny(ri.Name, "/ \t"):
			c.bad(t+".name", "%q is not a valid Linux interface name", ri.Name)
		case names[ri.Name] != "":
			c.bad(t+".name", "%q is already declared as %s", ri.Name, names[ri.Name])
		default:
			names[ri.Name] = t
		}
		switch ri.Kind {
		case "", "afpacket":
			ifc.Kind = "afpacket"
		case "tun", "tap":
		default:
			c.bad(t+".kind", "%q is not a port kind (want \"afpacket\", \"tun\" or \"tap\")", ri.Kind)
		}
		c.tunSettings(t, &ifc, ri.Owner, ri.Group, ri.ClampMSS, ri.ClampMSSTo)
		if ifc.Kind == "tun" && ri.MAC != "" {
			c.bad(t+".mac", "a TUN port has no link layer, so no MAC")
		}
		if ri.MTU != 0 && (ri.MTU < 68 || ri.MTU > 65535) {
			c.bad(t+".mtu", "%d is out of range 68..65535", ri.MTU)
		}
		ifc.SendRedirects = true // Linux's default, RFC 1812 5.2.7.2
		if ri.SendRedirects != nil {
			ifc.SendRedirects = *ri.SendRedirects
		}
		if ri.AcceptSourceRoute != nil {
			ifc.AcceptSourceRoute = *ri.AcceptSourceRoute
		}
		if ri.BCForwarding != nil {
			ifc.BCForwarding = *ri.BCForwarding
		}
		if ri.RPFilter != nil {
			if v := *ri.RPFilter; v < 0 || v > 2 {
				c.bad(t+".rp_filter", "%d is not a mode: 0 (off), 1 (strict) or 2 (loose), as Linux's rp_filter", v)
			} else {
				ifc.RPFilter = v
			}
		}
		if ri.MAC != "" {
			if mac, err := unicastMAC(ri.MAC); err != nil {
				c.bad(t+".mac", "%v", err)
			} else {
				ifc.MAC = mac
			}
		}
		for _, s := range ri.Addresses {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				c.bad(t+".addresses", "%q is not an address with prefix length (like 192.0.2.1/24)", s)
				continue
			}
			if p.Addr().Is6() {
				if msg := badAddr6(p); msg != "" {
					c.bad(t+".addresses", "%s %s", s, msg)
					continue
				}
			} else if p.Bits() < 32 && (p.Addr() == p.Masked().Addr() || p.Addr() == broadcast(p)) && p.Bits() < 31 {
				c.bad(t+".addresses", "%s is the network or broadcast address of its prefix", s)
				continue
			}
			// A link-local address is unique on its link only: the same
			// one may serve every port.
			key := p.Addr()
			if key.IsLinkLocalUnicast() {
				key = key.WithZone(ri.Name)
			}
			if o, dup := owners[key]; dup {
				c.bad(t+".addresses", "%s is already assigned in %s", p.Addr(), o)
				continue
			}
			if key.IsLinkLocalUnicast() {
				for _, a := range ifc.Addresses {
					if a.Addr().IsLinkLocalUnicast() {
						c.bad(t+".addresses", "%s: a port has one link-local address (%s is already listed)", p.Addr(), a.Addr())
					}
				}
			}
			owners[key] = t
			ifc.Addresses = append(ifc.Addresses, p)
		}
		if ri.RA != nil {
			ifc.RA = c.ra(t+".ra", ri.RA, ifc)
		}
		cfg.Interfaces = append(cfg.Interfaces, ifc)
	}
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func unicastMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("%q is not a 6-byte MAC address (like 02:00:00:00:00:01)", s)
	}
	if mac[0]&1 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return nil, fmt.Errorf("%s is not a unicast MAC address", s)
	}
	return mac, nil
}

// connected finds the interface whose network holds a.
func connected(cfg *Config, a netip.Addr, dev string) (string, bool) {
	for _, ifc := range cfg.Interfaces {
		if dev != "" && ifc.Name != dev {
			continue
		}
		for _, p := range ifc.Addresses {
			if p.Contains(a) {
				return ifc.Name, true
			}
		}
	}
	return "", false
}

func (c *checker) networks(cfg *Config) string {
	var parts []string
	for _, ifc := range cfg.Interfaces {
		for _, p := range ifc.Addresses {
			parts = append(parts, ifc.Name+" "+p.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (c *checker) hasDev(cfg *Config, dev string) bool {
	for _, ifc := range cfg.Interfaces {
		if ifc.Name == dev {
			return true
		}
	}
	return false
}

func (c *checker) ownAddr(cfg *Config, a netip.Addr) (string, bool) {
	for _, ifc := range cfg.Interfaces {
		for _, p := range ifc.Addresses {
			if p.Addr() == a {
				return ifc.Name, true
			}
		}
	}
	return "", false
}

func (c *checker) neighbors(raw *rawFile, cfg *Config) {
	seen := map[string]string{}
	for i, rn := range raw.Neighbor {
		t := fmt.Sprintf("neighbor[%d]", i)
		n := Neighbor{Dev: rn.Dev, Line: c.lines[t]}
		ip, err := netip.ParseAddr(rn.IP)
		if err != nil || ip.Zone() != "" || ip.Is4In6() || ip.IsMulticast() || ip.IsUnspecified() {
			c.bad(t+".ip", "%q is not a unicast IPv4 or IPv6 address", rn.IP)
			continue
		}
		n.IP = ip
		mac, err := unicastMAC(rn.MAC)
		if err != nil {
			c.bad(t+".mac", "%v", err)
			continue
		}
		n.MAC = mac
		if rn.Dev == "" && ip.IsLinkLocalUnicast() {
			c.bad(t+".dev", "missing: a link-local neighbour needs its interface")
			continue
		}
		if rn.Dev == "" {
			dev, ok := connected(cfg, ip, "")
			if !ok {
				c.bad(t+".dev", "missing, and %s is on no connected network", ip)
				continue
			}
			n.Dev = dev
		} else if !c.hasDev(cfg, rn.Dev) {
			c.bad(t+".dev", "%q is not a configured interface", rn.Dev)
			continue
		}
		k := n.Dev + " " + ip.String()
		if o, dup := seen[k]; dup {
			c.bad(t+".ip", "%s dev %s duplicates %s", ip, n.Dev, o)
			continue
		}
		seen[k] = t
		cfg.Neighbors = append(cfg.Neighbors, n)
	}
}
