package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// The server lives in package main of ferryd; ferryctl is tested against a
// minimal server speaking the same protocol over a real unix socket.
func serve(t *testing.T, answer string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte(answer + "\n"))
			c.Close()
		}
	}()
	return path
}

func ctl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestShowInterfaces(t *testing.T) {
	path := serve(t, `{"ok":true,"data":[{"name":"r0","index":0,"mac":"02:00:00:00:01:00","mtu":1500,"up":true,"addresses":["192.0.2.1/24"],"rx_packets":12,"rx_bytes":900,"tx_packets":3,"tx_bytes":200,"drops":{"ttl_exceeded":2,"ip_bad_checksum":1},"ipv4":{"rp_filter":2,"send_redirects":true}}]}`)
	code, out, _ := ctl("-s", path, "show", "int")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"0: r0", "UP", "192.0.2.1/24", "12 packets", "drop  ip_bad_checksum  1", "ttl_exceeded",
		"ipv4  rp_filter 2 send_redirects 1 accept_source_route 0 bc_forwarding 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "ip_bad_checksum") > strings.Index(out, "ttl_exceeded") {
		t.Error("drop reasons not sorted")
	}
	if code, _, errs := ctl("-s", path, "show", "interface", "eth9"); code != 1 || !strings.Contains(errs, "no interface") {
		t.Errorf("unknown interface: exit %d %q", code, errs)
	}
}

func TestShowRoutesNeighborsStats(t *testing.T) {
	path := serve(t, `{"ok":true,"data":[{"prefix":"198.51.100.0/24","type":"unicast","via":"192.0.2.2","dev":"r0","metric":5}]}`)
	if _, out, _ := ctl("-s", path, "show", "routes"); !strings.Contains(out, "198.51.100.0/24 via 192.0.2.2 dev r0 proto static metric 5") {
		t.Errorf("routes:\n%s", out)
	}
	path = serve(t, `{"ok":true,"data":[{"ip":"192.0.2.2","mac":"02:00:00:00:00:0a","dev":"r0","state":"REACHABLE"}]}`)
	if _, out, _ := ctl("-s", path, "show", "arp"); !strings.Contains(out, "192.0.2.2") || !strings.Contains(out, "lladdr 02:00:00:00:00:0a") || !strings.Contains(out, "REACHABLE") {
		t.Errorf("neighbors:\n%s", out)
	}
	path = serve(t, `{"ok":true,"data":[{"id":0,"batches":2,"packets":10,"avg_batch":5,"drops":{"no_route":1}},{"id":-1}]}`)
	if _, out, _ := ctl("-s", path, "show", "stats"); !strings.Contains(out, "control") || !strings.Contains(out, "no_route") {
		t.Errorf("stats:\n%s", out)
	}
	if _, out, _ := ctl("-s", path, "-j", "show", "stats"); !strings.HasPrefix(out, "[{") {
		t.Errorf("-j:\n%s", out)
	}
}

func TestErrors(t *testing.T) {
	if code, _, errs := ctl("-s", filepath.Join(t.TempDir(), "none.sock"), "show", "stats"); code != 1 || !strings.Contains(errs, "cannot reach ferryd") {
		t.Errorf("no daemon: exit %d %q", code, errs)
	}
	if code, _, _ := ctl("frobnicate"); code != 2 {
		t.Errorf("bad command: exit %d", code)
	}
	path := serve(t, `{"ok":false,"error":"unknown command"}`)
	if code, _, errs := ctl("-s", path, "show", "stats"); code != 1 || !strings.Contains(errs, "unknown command") {
		t.Errorf("server error: exit %d %q", code, errs)
	}
}
