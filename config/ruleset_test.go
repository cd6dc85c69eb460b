package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRulesetAndConntrack(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.nft"), []byte("table inet filter {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := good + `
[ruleset]
file = "rules.nft"

[conntrack]
max = 4096
tcp_loose = false

[conntrack.timeouts]
udp_timeout = 10
tcp_timeout_established = "2h"
`
	path := filepath.Join(dir, "ferry.toml")
	cfg, err := Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ruleset.File != filepath.Join(dir, "rules.nft") || cfg.Ruleset.Line != 23 {
		t.Errorf("ruleset %+v", cfg.Ruleset)
	}
	ct := cfg.Conntrack
	if ct.Max != 4096 || ct.TCPLoose || ct.Timeouts["udp_timeout"] != 10*time.Second || ct.Timeouts["tcp_timeout_established"] != 2*time.Hour {
		t.Errorf("conntrack %+v", ct)
	}

	cfg, err = Parse(path, []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ruleset.File != "" || cfg.Conntrack.Max != DefaultConntrackMax || !cfg.Conntrack.TCPLoose {
		t.Errorf("defaults: %+v %+v", cfg.Ruleset, cfg.Conntrack)
	}
}

func TestRulesetAndConntrackErrors(t *testing.T) {
	dir := t.TempDir()
	src := good + `
[ruleset]
file = "missing.nft"

[conntrack]
max = 10

[conntrack.timeouts]
udp_timout = 10
icmp_timeout = "soon"
`
	_, err := Parse(filepath.Join(dir, "f.toml"), []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"f.toml:23: ruleset.file: stat " + filepath.Join(dir, "missing.nft"),
		"f.toml:26: conntrack.max: 10 is out of range",
		"f.toml:29: conntrack.timeouts.udp_timout: unknown timeout",
		"f.toml:30: conntrack.timeouts.icmp_timeout: soon is not a duration",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestNATSection(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(good+"\n[nat]\nfiltering = \"address-dependent\"\nmax_mappings = 4096\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NAT.Filtering != "address-dependent" || cfg.NAT.MaxMappings != 4096 {
		t.Errorf("%+v", cfg.NAT)
	}
	_, err = Parse("f.toml", []byte(good+"\n[nat]\nfiltering = \"full-cone\"\n"))
	if err == nil || !strings.Contains(err.Error(), `nat.filtering: "full-cone" is not a filtering mode`) {
		t.Errorf("bad filtering: %v", err)
	}
}
