package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-router/ferry/dataplane"
)

// The control protocol: one JSON request per line,
// {"cmd":"show","args":["interfaces"]}, answered by one JSON line,
// {"ok":true,"data":...} or {"ok":false,"error":"..."}.
type request struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args"`
}

type response struct {
	OK    bool   `json:"ok"`
	Data  any    `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
}

const maxRequest = 64 << 10

type handler func(args []string) (any, error)

type controlServer struct {
	path  string
	ln    net.Listener
	log   *slog.Logger
	mu    sync.Mutex
	cmds  map[string]handler
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startControl listens on the unix socket at path (mode 0600) and serves
// the show commands from st.
func startControl(path string, st dataplane.Status, log *slog.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another ferryd is running on %s", path)
		}
		os.Remove(path) // stale: left by a ferryd that did not exit cleanly
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &controlServer{path: path, ln: ln, log: log, cmds: map[string]handler{}, conns: map[net.Conn]bool{}}
	s.Handle("show interfaces", func([]string) (any, error) { return st.Interfaces(), nil })
	s.Handle("show routes", func([]string) (any, error) { return st.Routes(), nil })
	s.Handle("show neighbors", func([]string) (any, error) { return st.Neighbors(), nil })
	s.Handle("show stats", func([]string) (any, error) { return st.Workers(), nil })
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Handle registers a command; name is the command and its fixed words
// ("show routes"); the words after them reach fn as args.
func (s *controlServer) Handle(name string, fn handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds[name] = fn
}

func (s *controlServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.conn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *controlServer) conn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	for {
		// A client that goes quiet is let go, so it cannot pin a goroutine.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, errTooLong) {
				enc.Encode(response{Error: "request larger than 64 KiB"})
			}
			return
		}
		var req request
		var resp response
		if err := json.Unmarshal(line, &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = s.dispatch(req)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

var errTooLong = errors.New("request too long")

func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		part, more, err := r.ReadLine()
		if err != nil {
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > maxRequest {
			return nil, errTooLong
		}
		if !more {
			return buf, nil
		}
	}
}

func (s *controlServer) dispatch(req request) response {
	words := append([]string{req.Cmd}, req.Args...)
	// The longest registered command that prefixes the request wins. It
	// runs without the lock: a long route load must not hold up show.
	for n := len(words); n > 0; n-- {
		s.mu.Lock()
		fn, ok := s.cmds[strings.Join(words[:n], " ")]
		s.mu.Unlock()
		if ok {
			data, err := fn(words[n:])
			if err != nil {
				return response{Error: err.Error()}
			}
			return response{OK: true, Data: data}
		}
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.cmds))
	for k := range s.cmds {
		names = append(names, k)
	}
	s.mu.Unlock()
	sort.Strings(names)
	return response{Error: fmt.Sprintf("unknown command %q; commands: %s", strings.Join(words, " "), strings.Join(names, ", "))}
}

// Close stops listening, removes the socket and waits for open requests.
func (s *controlServer) Close() error {
	err := s.ln.Close()
	os.Remove(s.path)
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
