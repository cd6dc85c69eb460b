package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestMetricsSection(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Listen != "" {
		t.Errorf("absent [metrics]: %+v", cfg.Metrics)
	}
	for _, l := range []string{"127.0.0.1:9108", "[2001:db8::1]:9108", ":9108"} {
		cfg, err := Parse("f.toml", []byte(good+"\n[metrics]\nlisten = \""+l+"\"\n"))
		if err != nil {
			t.Errorf("%s: %v", l, err)
			continue
		}
		if cfg.Metrics.Listen != l || cfg.Metrics.Line == 0 {
			t.Errorf("%s: %+v", l, cfg.Metrics)
		}
	}
	cfg, err = Parse("f.toml", []byte(good+"\n[metrics]\nlisten = \"\"\n"))
	if err != nil || cfg.Metrics.Listen != "" {
		t.Errorf("empty listen: %+v %v", cfg.Metrics, err)
	}
	line := strings.Count(good, "\n") + 3
	for l, want := range map[string]string{
		"127.0.0.1":        "is not an address",
		"localhost:9108":   `"localhost" is not an IP address`,
		"127.0.0.1:0":      "out of range",
		"127.0.0.1:http":   "out of range",
		"127.0.0.1:70000":  "out of range",
		"2001:db8::1:9108": "is not an address",
		"192.0.2.300:9108": "is not an IP address",
	} {
		_, err := Parse("f.toml", []byte(good+"\n[metrics]\nlisten = \""+l+"\"\n"))
		if err == nil {
			t.Errorf("%s accepted", l)
			continue
		}
		prefix := "f.toml:" + strconv.Itoa(line) + ": metrics.listen: "
		if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q and %q in %v", l, prefix, want, err)
		}
	}
}
