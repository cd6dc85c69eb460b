package config

import (
	"os"
	"path/filepath"
	"sort"
	"time"
)

// DefaultConntrackMax is the connection table's capacity when [conntrack]
// does not set max: Linux's nf_conntrack_max on a machine with 8 GiB or more.
const DefaultConntrackMax = 262144

// conntrackTimeouts are the keys [conntrack.timeouts] accepts, as Linux
// names its sysctls (net.netfilter.nf_conntrack_<key>).
var conntrackTimeouts = map[string]bool{
	"tcp_timeout_syn_sent": true, "tcp_timeout_syn_recv": true, "tcp_timeout_established": true,
	"tcp_timeout_fin_wait": true, "tcp_timeout_close_wait": true, "tcp_timeout_last_ack": true,
	"tcp_timeout_time_wait": true, "tcp_timeout_close": true, "tcp_timeout_unacknowledged": true,
	"udp_timeout": true, "udp_timeout_stream": true, "icmp_timeout": true, "generic_timeout": true,
}

func (c *checker) ruleset(raw *rawFile, cfg *Config) {
	f := raw.Ruleset.File
	if f == "" {
		return
	}
	if !filepath.IsAbs(f) {
		f = filepath.Join(filepath.Dir(c.file), f)
	}
	cfg.Ruleset = Ruleset{File: f, Line: c.lines["ruleset.file"]}
	if _, err := os.Stat(f); err != nil {
		c.bad("ruleset.file", "%v", err)
	}
}

func (c *checker) conntrack(raw *rawFile, cfg *Config) {
	ct := &cfg.Conntrack
	ct.Max = DefaultConntrackMax
	if m := raw.Conntrack.Max; m != nil {
		if *m < 1024 || *m > 1<<26 {
			c.bad("conntrack.max", "%d is out of range 1024..%d", *m, 1<<26)
		}
		ct.Max = *m
	}
	ct.TCPLoose = true
	if l := raw.Conntrack.TCPLoose; l != nil {
		ct.TCPLoose = *l
	}
	keys := make([]string, 0, len(raw.Conntrack.Timeouts))
	for k := range raw.Conntrack.Timeouts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := "conntrack.timeouts." + k
		if !conntrackTimeouts[k] {
			c.bad(key, "unknown timeout (known: tcp_timeout_established, udp_timeout, icmp_timeout, ... as Linux's nf_conntrack sysctls)")
			continue
		}
		d, ok := duration(raw.Conntrack.Timeouts[k])
		if !ok || d <= 0 {
			c.bad(key, "%v is not a duration: write seconds (30) or a Go duration (\"30s\", \"5m\", \"120h\")", raw.Conntrack.Timeouts[k])
			continue
		}
		if ct.Timeouts == nil {
			ct.Timeouts = map[string]time.Duration{}
		}
		ct.Timeouts[k] = d
	}
}

// duration reads seconds as a TOML integer, or a Go duration string.
func duration(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case int64:
		return time.Duration(x) * time.Second, true
	case string:
		d, err := time.ParseDuration(x)
		return d, err == nil
	}
	return 0, false
}

// natFilterings are the [nat] filtering modes, RFC 4787's names.
var natFilterings = []string{"endpoint-independent", "address-dependent", "address-port-dependent"}

func (c *checker) nat(raw *rawFile, cfg *Config) {
	n := &cfg.NAT
	n.Filtering = "endpoint-independent"
	if f := raw.NAT.Filtering; f != "" {
		ok := false
		for _, k := range natFilterings {
			ok = ok || k == f
		}
		if !ok {
			c.bad("nat.filtering", "%q is not a filtering mode (endpoint-independent, address-dependent, address-port-dependent)", f)
		}
		n.Filtering = f
	}
	n.MaxMappings = DefaultConntrackMax
	if m := raw.NAT.MaxMappings; m != nil {
		if *m < 1024 || *m > 1<<24 {
			c.bad("nat.max_mappings", "%d is out of range 1024..%d", *m, 1<<24)
		}
		n.MaxMappings = *m
	}
}
