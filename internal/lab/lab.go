// Package lab builds throwaway network-namespace labs for ferry's tests,
// demo and benchmarks, and always takes them down again: everything it
// creates lives in namespaces named after the lab, so nothing ever lands on
// the host's own interfaces, routes or firewall.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Namespaces of a lab are named "fy" + 6 hex digits (the lab id) + "-" +
// the caller's short name. Reap and Close only ever touch names of exactly
// this shape, so a bug here cannot delete someone else's namespace.
var nsPattern = regexp.MustCompile(`^(fy[0-9a-f]{6})-[a-z0-9]{1,8}$`)

// lockDir holds one flock'ed file per live lab. A lab whose lock is free
// belongs to a process that died without cleaning up, which is what Reap
// looks for.
const lockDir = "/run/ferry-lab"

// netnsDir is where `ip netns add` bind-mounts named namespaces.
const netnsDir = "/var/run/netns"

// Lab owns a set of namespaces and the processes started in them.
type Lab struct {
	ID string // "fy" + 6 hex digits, prefix of every namespace name

	tb   testing.TB // nil for non-test users
	lock *os.File

	mu     sync.Mutex
	nss    []*Netns
	procs  []*Proc
	closed bool
}

// Netns is one named network namespace of a lab.
type Netns struct {
	Name string // full name, as `ip netns` knows it
	Lab  *Lab
}

// Available reports why labs cannot be built here, or nil if they can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs iproute2 (ip); run scripts/deps.sh")
	}
	return nil
}

// New creates an empty lab for a program (demo, bench), after reaping the
// leftovers of dead labs. The caller must Close it; CloseOnSignal makes that
// happen on SIGINT/SIGTERM too.
func New() (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	// Labs of test binaries killed by a timeout never ran their cleanup;
	// their namespaces go now. Failure to reap is not this lab's problem.
	Reap()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &Lab{ID: "fy" + hex.EncodeToString(b[:])}
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(lockDir, l.ID+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab lock: %w", err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	l.lock = f
	return l, nil
}

// NewT creates a lab for a test: it skips the test when labs cannot be
// built (not root), and closes the lab in t.Cleanup, so namespaces go away
// even when the test fails.
func NewT(tb testing.TB) *Lab {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skipf("lab: %v", err)
	}
	l, err := New()
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	l.tb = tb
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("lab close: %v", err)
		}
	})
	return l
}

// CloseOnSignal closes the lab and exits the program with status 130 when
// SIGINT or SIGTERM arrives. For programs only; tests rely on t.Cleanup.
func (l *Lab) CloseOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-ch
		fmt.Fprintf(os.Stderr, "lab: %v: cleaning up %s\n", s, l.ID)
		l.Close()
		os.Exit(130)
	}()
}

// fail reports err through the test if there is one, else panics: the
// Must* helpers are for code where a broken lab leaves nothing to do.
func (l *Lab) fail(err error) {
	if l.tb != nil {
		l.tb.Helper()
		l.tb.Fatal(err)
	}
	panic(err)
}

// Netns creates namespace "<lab id>-<short>" with loopback up. short is
// 1-8 characters of [a-z0-9].
func (l *Lab) Netns(short string) (*Netns, error) {
	name := l.ID + "-" + short
	if !nsPattern.MatchString(name) {
		return nil, fmt.Errorf("lab: bad namespace name %q (want 1-8 of [a-z0-9])", short)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab: closed")
	}
	l.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	n := &Netns{Name: name, Lab: l}
	l.mu.Lock()
	l.nss = append(l.nss, n)
	l.mu.Unlock()
	if _, err := n.Run(context.Background(), "ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return n, nil
}

// MustNetns is Netns that fails the test (or panics) on error.
func (l *Lab) MustNetns(short string) *Netns {
	if l.tb != nil {
		l.tb.Helper()
	}
	n, err := l.Netns(short)
	if err != nil {
		l.fail(err)
	}
	return n
}

// Veth connects a:aName to b:bName with a veth pair and sets both ends up.
// The pair is created inside a and its peer moved straight into b, so it
// never exists on the host.
func (l *Lab) Veth(a *Netns, aName string, b *Netns, bName string) error {
	if len(aName) > 15 || len(bName) > 15 {
		return fmt.Errorf("lab: interface name too long: %q %q", aName, bName)
	}
	ctx := context.Background()
	if _, err := a.Run(ctx, "ip", "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name); err != nil {
		return err
	}
	if _, err := a.Run(ctx, "ip", "link", "set", aName, "up"); err != nil {
		return err
	}
	_, err := b.Run(ctx, "ip", "link", "set", bName, "up")
	return err
}

// Close kills every process the lab started and deletes its namespaces.
// It is idempotent and safe to call from a signal handler goroutine.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, nss := l.procs, l.nss
	l.procs, l.nss = nil, nil
	l.mu.Unlock()

	for _, p := range procs {
		p.kill()
	}
	var errs []error
	for _, n := range nss {
		if err := deleteNetns(n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if l.lock != nil {
		os.Remove(l.lock.Name())
		l.lock.Close()
	}
	return errors.Join(errs...)
}

// deleteNetns kills whatever still runs in a lab namespace (a namespace
// with live processes outlives `ip netns del`) and deletes it.
func deleteNetns(name string) error {
	if !nsPattern.MatchString(name) {
		return fmt.Errorf("lab: refusing to delete %q: not a lab namespace", name)
	}
	for i := 0; i < 20; i++ {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			var pid int
			if _, err := fmt.Sscanf(p, "%d", &pid); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	out, err := exec.Command("ip", "netns", "del", name).CombinedOutput()
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, name)); os.IsNotExist(serr) {
			return nil
		}
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Reap deletes namespaces left behind by labs whose process died without
// closing them (SIGKILL, a crashed test binary): lab-shaped names whose
// lab lock is not held by a live process. It returns the names deleted.
func Reap() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	orphan := map[string]bool{} // lab id -> nobody holds its lock
	var removed []string
	var errs []error
	for _, e := range entries {
		m := nsPattern.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		id := m[1]
		dead, seen := orphan[id]
		if !seen {
			dead = !lockHeld(id)
			orphan[id] = dead
		}
		if !dead {
			continue
		}
		if err := deleteNetns(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	for id, dead := range orphan {
		if dead {
			os.Remove(filepath.Join(lockDir, id+".lock"))
		}
	}
	return removed, errors.Join(errs...)
}

// lockHeld reports whether a live process holds lab id's lock. flock locks
// belong to open file descriptions, so probing from a new open file works
// even inside the owning process.
func lockHeld(id string) bool {
	f, err := os.Open(filepath.Join(lockDir, id+".lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Run runs a command inside the namespace and returns its combined output.
// A failure's error includes the command and its output.
func (n *Netns) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("[%s] %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// MustRun is Run with a 60 s bound that fails the test (or panics) on error.
func (n *Netns) MustRun(args ...string) string {
	if n.Lab.tb != nil {
		n.Lab.tb.Helper()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := n.Run(ctx, args...)
	if err != nil {
		n.Lab.fail(err)
	}
	return string(out)
}

// Sysctl sets a sysctl inside the namespace (only per-namespace keys such as
// net.ipv4.* are meaningful here).
func (n *Netns) Sysctl(key, value string) error {
	_, err := n.Run(context.Background(), "sysctl", "-q", "-w", key+"="+value)
	return err
}

// Do runs fn on an OS thread switched into the namespace, for code that
// needs sockets there (raw senders, benchmark generators). Sockets opened
// inside fn stay in the namespace after Do returns.
func (n *Netns) Do(fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, n.Name))
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A fresh goroutine keeps the caller's thread untouched; if switching
	// back fails, the goroutine exits still locked and the runtime discards
	// the thread instead of reusing it in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Proc is a background process started in a namespace. Its output is kept
// in memory (and in LogFile, if set) for failure reports.
type Proc struct {
	Cmd  *exec.Cmd
	Name string

	out  *syncBuffer
	done chan struct{}
	err  error // valid after done is closed
}

// Start starts a background command in the namespace. The lab kills it at
// Close if it is still running.
func (n *Netns) Start(args ...string) (*Proc, error) {
	return n.StartLog("", args...)
}

// StartLog is Start that also writes the process's combined output to
// logFile (when not empty), so it survives for post-mortems.
func (n *Netns) StartLog(logFile string, args ...string) (*Proc, error) {
	l := n.Lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab: closed")
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	buf := &syncBuffer{}
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, err
		}
		buf.file = f
	}
	cmd.Stdout, cmd.Stderr = buf, buf
	// If this program dies, its children must not keep lab namespaces alive.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("[%s] start %s: %w", n.Name, strings.Join(args, " "), err)
	}
	p := &Proc{Cmd: cmd, Name: args[0], out: buf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		buf.close()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// MustStart is Start that fails the test (or panics) on error.
func (n *Netns) MustStart(args ...string) *Proc {
	if n.Lab.tb != nil {
		n.Lab.tb.Helper()
	}
	p, err := n.Start(args...)
	if err != nil {
		n.Lab.fail(err)
	}
	return p
}

// Output is everything the process has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its Wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends sig and waits up to timeout for the process to exit, then
// kills it. It returns the process's Wait error (nil for a clean exit), or
// an error saying it had to be killed.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of %v; killed", p.Name, timeout, sig)
	}
}

func (p *Proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// syncBuffer collects a child's output; exec copies stdout and stderr from
// two goroutines.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	file *os.File
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		s.file.Write(p)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}
