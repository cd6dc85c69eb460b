package main

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-router/ferry/dataplane"
)

type fakeStatus struct{}

func (fakeStatus) Interfaces() []dataplane.InterfaceStatus {
	return []dataplane.InterfaceStatus{{Name: "r0", Drops: map[string]uint64{"no_route": 3}}}
}
func (fakeStatus) Routes() []dataplane.RouteStatus       { return nil }
func (fakeStatus) Neighbors() []dataplane.NeighborStatus { return nil }
func (fakeStatus) Workers() []dataplane.WorkerStatus     { return []dataplane.WorkerStatus{{ID: 0}} }

func ask(t *testing.T, path, line string) map[string]any {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(line + "\n"))
	resp, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestControlServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "ferryd.sock")
	s, err := startControl(path, fakeStatus{}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	m := ask(t, path, `{"cmd":"show","args":["interfaces"]}`)
	if m["ok"] != true || !strings.Contains(toJSON(m["data"]), `"no_route":3`) {
		t.Errorf("show interfaces: %v", m)
	}
	if m := ask(t, path, `{"cmd":"show","args":["bogus"]}`); m["ok"] != false || !strings.Contains(m["error"].(string), "show stats") {
		t.Errorf("unknown command: %v", m)
	}
	if m := ask(t, path, `not json`); m["ok"] != false {
		t.Errorf("bad json: %v", m)
	}
	if m := ask(t, path, `{"cmd":"`+strings.Repeat("x", 70000)+`"}`); m["ok"] != false || !strings.Contains(m["error"].(string), "64 KiB") {
		t.Errorf("oversized: %v", m)
	}
	if _, err := startControl(path, fakeStatus{}, slog.Default()); err == nil || !strings.Contains(err.Error(), "another ferryd") {
		t.Errorf("second server on a live socket: %v", err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("socket not removed at Close")
	}
	// A stale socket file (no listener) is replaced.
	ln, _ := net.Listen("unix", path)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s2, err := startControl(path, fakeStatus{}, slog.Default())
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s2.Close()
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
