package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `
[dataplane]
workers = 2

[[interface]]
name = "r0"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "r1"
addresses = ["198.51.100.1/24"]
mtu = 1300

[[route]]
prefix = "203.0.113.0/24"
via = "198.51.100.2"

[[neighbor]]
ip = "192.0.2.2"
mac = "02:00:00:00:00:02"
`

func TestExampleParses(t *testing.T) {
	cfg, err := Load("example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Interfaces) != 3 || len(cfg.Routes) != 4 || len(cfg.Neighbors) != 1 || len(cfg.Tables) != 1 || len(cfg.Rules) != 1 {
		t.Errorf("example: %d interfaces, %d routes, %d neighbors, %d tables, %d rules",
			len(cfg.Interfaces), len(cfg.Routes), len(cfg.Neighbors), len(cfg.Tables), len(cfg.Rules))
	}
}

func TestGoodAndDefaults(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Dataplane
	if d.Workers != 2 || d.BatchSize != DefaultBatchSize || d.RingFrames != DefaultRingFrames || d.FrameSize != DefaultFrameSize {
		t.Errorf("dataplane %+v", d)
	}
	if cfg.Control.Socket != DefaultSocket {
		t.Errorf("socket %q", cfg.Control.Socket)
	}
	if r := cfg.Routes[0]; r.Dev != "r1" || r.Type != "unicast" || r.Line != 14 {
		t.Errorf("route %+v", r)
	}
	if n := cfg.Neighbors[0]; n.Dev != "r0" {
		t.Errorf("neighbor dev %q, want derived r0", n.Dev)
	}
	if cfg.Interfaces[1].MTU != 1300 || cfg.Interfaces[1].Kind != "afpacket" || cfg.Interfaces[1].Line != 9 {
		t.Errorf("interface %+v", cfg.Interfaces[1])
	}
}

func TestErrorsNameLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		line int
		key  string
		msg  string
	}{
		{"syntax", func(s string) string { return s + "\n[[route]\n" }, 23, "", "expected"},
		{"unknown key", func(s string) string { return strings.Replace(s, "mtu = 1300", "mtu = 1300\nspeed = 10", 1) }, 13, "interface.speed", "unknown key"},
		{"wrong type", func(s string) string { return strings.Replace(s, "mtu = 1300", `mtu = "big"`, 1) }, 12, "", "mtu"},
		{"bad address", func(s string) string { return strings.Replace(s, "198.51.100.1/24", "198.51.100.300/24", 1) }, 11, "interface[1].addresses", "not an address"},
		{"host bits", func(s string) string { return strings.Replace(s, "203.0.113.0/24", "203.0.113.1/24", 1) }, 15, "route[0].prefix", "did you mean 203.0.113.0/24"},
		{"unreachable gateway", func(s string) string { return strings.Replace(s, "198.51.100.2", "203.0.113.9", 1) }, 16, "route[0].via", "not on any connected network"},
		{"gateway is ferry", func(s string) string { return strings.Replace(s, `via = "198.51.100.2"`, `via = "198.51.100.1"`, 1) }, 16, "route[0].via", "ferry's own"},
		{"duplicate name", func(s string) string { return strings.Replace(s, `name = "r1"`, `name = "r0"`, 1) }, 10, "interface[1].name", "already declared"},
		{"duplicate address", func(s string) string { return strings.Replace(s, "198.51.100.1/24", "192.0.2.1/24", 1) }, 11, "interface[1].addresses", "already assigned"},
		{"bad mac", func(s string) string { return strings.Replace(s, "02:00:00:00:00:02", "03:00:00:00:00:02", 1) }, 20, "neighbor[0].mac", "unicast"},
		{"unknown dev", func(s string) string { return strings.Replace(s, `via = "198.51.100.2"`, `dev = "eth9"`, 1) }, 16, "route[0].dev", "not a configured interface"},
		{"ipv6 prefix via ipv4", func(s string) string { return strings.Replace(s, "203.0.113.0/24", "2001:db8::/32", 1) }, 16, "route[0].via", "different address families"},
		{"ipv6 multicast address", func(s string) string {
			return strings.Replace(s, `"198.51.100.1/24"]`, `"198.51.100.1/24", "ff02::1/64"]`, 1)
		}, 11, "interface[1].addresses", "not a unicast"},
		{"ra mtu", func(s string) string {
			return strings.Replace(s, "mtu = 1300", "mtu = 1300\n[interface.ra]\nmtu = 900", 1)
		}, 14, "interface[1].ra.mtu", "out of range 1280"},
		{"kind", func(s string) string { return strings.Replace(s, `name = "r1"`, "name = \"r1\"\nkind = \"tunnel\"", 1) }, 11, "interface[1].kind", "not a port kind"},
		{"tun mac", func(s string) string {
			return strings.Replace(s, `name = "r1"`, "name = \"r1\"\nkind = \"tun\"\nmac = \"02:00:00:00:00:01\"", 1)
		}, 12, "interface[1].mac", "no link layer"},
		{"owner", func(s string) string { return strings.Replace(s, `name = "r1"`, "name = \"r1\"\nowner = \"0\"", 1) }, 11, "interface[1].owner", "for kind"},
		{"clamp_mss_to", func(s string) string {
			return strings.Replace(s, `name = "r1"`, "name = \"r1\"\nkind = \"tun\"\nclamp_mss_to = 100", 1)
		}, 12, "interface[1].clamp_mss_to", "out of range"},
		{"workers", func(s string) string { return strings.Replace(s, "workers = 2", "workers = 0", 1) }, 3, "dataplane.workers", "out of range"},
		{"route type", func(s string) string { return strings.Replace(s, `via = "198.51.100.2"`, `type = "drop"`, 1) }, 16, "route[0].type", "not a route type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("ferry.toml", []byte(tc.edit(good)))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want *config.Error", err)
			}
			p := ce.Problems[0]
			if p.Line != tc.line || !strings.Contains(p.Key, tc.key) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q (line %d key %q), want line %d key %q message containing %q", err, p.Line, p.Key, tc.line, tc.key, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "ferry.toml:") {
				t.Errorf("message does not start with the file: %q", err)
			}
		})
	}
}

func TestAllProblemsReported(t *testing.T) {
	s := strings.Replace(good, "198.51.100.2", "203.0.113.9", 1)
	s = strings.Replace(s, "02:00:00:00:00:02", "zz", 1)
	_, err := Parse("f.toml", []byte(s))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
}

func TestModeIOOnlyNeedsTwoPorts(t *testing.T) {
	src := "[dataplane]\nmode = \"io-only\"\n\n[[interface]]\nname = \"a\"\n"
	_, err := Parse("x.toml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "x.toml:2: dataplane.mode: io-only cross-connects exactly two interfaces, not 1") {
		t.Fatalf("got %v", err)
	}
	_, err = Parse("x.toml", []byte("[dataplane]\nmode = \"fast\"\n\n[[interface]]\nname = \"a\"\n"))
	if err == nil || !strings.Contains(err.Error(), `x.toml:2: dataplane.mode: "fast" is not a mode`) {
		t.Fatalf("got %v", err)
	}
}

func TestKernelRx(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(strings.Replace(good, "mtu = 1300", "mtu = 1300\nkernel_rx = true", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interfaces[0].KernelRx || !cfg.Interfaces[1].KernelRx {
		t.Errorf("kernel_rx: got %v, %v; want false (the default), true", cfg.Interfaces[0].KernelRx, cfg.Interfaces[1].KernelRx)
	}
	_, err = Parse("f.toml", []byte(strings.Replace(good, "mtu = 1300", "mtu = 1300\nkernel_rx = \"yes\"", 1)))
	if err == nil || !strings.Contains(err.Error(), "f.toml:13") || !strings.Contains(err.Error(), "kernel_rx") {
		t.Errorf("kernel_rx as a string: got %v, want an error naming line 13 and the key", err)
	}
}

func TestTUNSettings(t *testing.T) {
	src := `
[[interface]]
name = "tun0"
kind = "tun"
owner = "0"
group = "root"
addresses = ["192.0.2.1/24"]

[[interface]]
name = "tap0"
kind = "tap"
clamp_mss_to = 1300

[[interface]]
name = "r1"
`
	cfg, err := Parse("ferry.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tun, tap, af := cfg.Interfaces[0], cfg.Interfaces[1], cfg.Interfaces[2]
	if tun.Kind != "tun" || tun.Owner != 0 || tun.Group != 0 || !tun.ClampMSS || tun.ClampMSSTo != 0 {
		t.Errorf("tun: %+v", tun)
	}
	if tap.Kind != "tap" || tap.Owner != -1 || !tap.ClampMSS || tap.ClampMSSTo != 1300 {
		t.Errorf("tap: %+v", tap)
	}
	if af.ClampMSS || af.Owner != -1 {
		t.Errorf("afpacket: %+v", af)
	}
}

func TestIPv4PortSettings(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(strings.Replace(good, "mtu = 1300",
		"mtu = 1300\nrp_filter = 1\nsend_redirects = false\naccept_source_route = true\nbc_forwarding = true", 1)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Interfaces[0], cfg.Interfaces[1]
	// Linux's defaults: redirects on; rp_filter, source routes and
	// directed broadcast forwarding off.
	if !a.SendRedirects || a.RPFilter != 0 || a.AcceptSourceRoute || a.BCForwarding {
		t.Errorf("defaults: %+v", a)
	}
	if b.SendRedirects || b.RPFilter != 1 || !b.AcceptSourceRoute || !b.BCForwarding {
		t.Errorf("set: %+v", b)
	}
	_, err = Parse("f.toml", []byte(strings.Replace(good, "mtu = 1300", "mtu = 1300\nrp_filter = 3", 1)))
	if err == nil || !strings.Contains(err.Error(), "f.toml:13: interface[1].rp_filter: 3 is not a mode") {
		t.Errorf("rp_filter = 3: got %v", err)
	}
	_, err = Parse("f.toml", []byte(strings.Replace(good, "mtu = 1300", "mtu = 1300\nsend_redirects = 1", 1)))
	if err == nil || !strings.Contains(err.Error(), "f.toml:13") || !strings.Contains(err.Error(), "send_redirects") {
		t.Errorf("send_redirects = 1: got %v", err)
	}
}

func TestIPv6AndRA(t *testing.T) {
	src := `
[[interface]]
name = "r0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64", "fe80::1/64"]

[interface.ra]
max_interval_s = 30
rdnss = ["2001:db8:1::53"]
mtu = 1400

[[interface]]
name = "r1"
addresses = ["2001:db8:2::1/64"]

[[route]]
prefix = "2001:db8:3::/48"
via = "2001:db8:2::2"

[[route]]
prefix = "::/0"
via = "fe80::2"
dev = "r1"

[[neighbor]]
ip = "2001:db8:2::2"
mac = "02:00:00:00:00:02"
`
	cfg, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ra := cfg.Interfaces[0].RA
	if ra == nil || ra.MaxInterval != 30*time.Second || ra.MinInterval != 10*time.Second || ra.Lifetime != 90*time.Second ||
		len(ra.Prefixes) != 1 || ra.Prefixes[0].String() != "2001:db8:1::/64" || ra.MTU != 1400 || len(ra.RDNSS) != 1 {
		t.Errorf("ra %+v", ra)
	}
	if cfg.Interfaces[1].RA != nil {
		t.Errorf("r1 has an RA config")
	}
	if r := cfg.Routes[0]; r.Dev != "r1" {
		t.Errorf("route %+v: dev not derived", r)
	}
	if n := cfg.Neighbors[0]; n.Dev != "r1" {
		t.Errorf("neighbor %+v", n)
	}
	if _, err := Parse("f.toml", []byte(strings.Replace(src, `"2001:db8:2::1/64"]`, `"2001:db8:2::1/64", "fe80::1/64"]`, 1))); err != nil {
		t.Errorf("one link-local address on two ports: %v", err)
	}
	if _, err := Parse("f.toml", []byte(strings.Replace(src, `"fe80::1/64"]`, `"fe80::1/64", "fe80::2/64"]`, 1))); err == nil || !strings.Contains(err.Error(), "one link-local address") {
		t.Errorf("two link-local addresses on a port: %v", err)
	}
	_, err = Parse("f.toml", []byte(strings.Replace(src, `dev = "r1"`, "", 1)))
	if err == nil || !strings.Contains(err.Error(), "f.toml:19: route[1].dev: missing: a link-local gateway") {
		t.Errorf("link-local via without dev: %v", err)
	}
}
