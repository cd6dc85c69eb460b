package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FerryConfig describes the ferryd config written for the rig.
type FerryConfig struct {
	Workers int    // dataplane workers (default 2)
	Socket  string // control socket path (required)
	MTU1    int    // MTU of r1 (B's side); 0 leaves the link's
	// BusyPollUS sets [dataplane] busy_poll_us; 0 leaves ferryd's default.
	BusyPollUS int
	// Mode sets [dataplane] mode ("io-only" for the benchmark floor).
	Mode string
	// Extra is appended verbatim: more [[route]] or [[neighbor]] tables.
	Extra string
	// IPv6 adds the rig's IPv6 addresses (AddrR0v6, AddrR1v6 in /64s) to
	// r0 and r1, each with router advertisements of its prefix every
	// RAInterval seconds at most (default 30), so hosts configure
	// themselves; RA0 and RA1 are appended to each [interface.ra]. NoRA
	// leaves the advertisements out (hosts configured statically, as a
	// benchmark wants its links quiet).
	IPv6       bool
	NoRA       bool
	RAInterval int
	RA0, RA1   string
	// Interfaces, when set, replaces the r0 and r1 [[interface]] tables
	// (the TUN tests give ferry r1 and a TUN, and r0 to R's kernel).
	Interfaces string
}

// TOML renders the rig's ferryd config: r0 and r1 with ferry's addresses
// and deliberately no default route, so Unrouted stays unrouted.
func (c FerryConfig) TOML() string {
	w := c.Workers
	if w == 0 {
		w = 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# ferryd config for the lab rig A — R — B (written by internal/lab)\n")
	fmt.Fprintf(&b, "[dataplane]\nworkers = %d\n", w)
	if c.BusyPollUS != 0 {
		fmt.Fprintf(&b, "busy_poll_us = %d\n", c.BusyPollUS)
	}
	if c.Mode != "" {
		fmt.Fprintf(&b, "mode = %q\n", c.Mode)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[control]\nsocket = %q\n\n", c.Socket)
	ra := func(extra string) {
		if c.IPv6 && !c.NoRA {
			fmt.Fprintf(&b, "\n[interface.ra]\nmax_interval_s = %d\n%s\n", max(c.RAInterval, 30), extra)
		}
	}
	addrs := func(v4, v6 string) string {
		if c.IPv6 {
			return fmt.Sprintf("%q, %q", v4+"/24", v6+"/64")
		}
		return fmt.Sprintf("%q", v4+"/24")
	}
	if c.Interfaces != "" {
		b.WriteString(c.Interfaces + "\n")
		if c.Extra != "" {
			b.WriteString("\n" + c.Extra + "\n")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "[[interface]]\nname = \"r0\"\nkind = \"afpacket\"\naddresses = [%s]\n", addrs(AddrR0, AddrR0v6))
	ra(c.RA0)
	fmt.Fprintf(&b, "\n[[interface]]\nname = \"r1\"\nkind = \"afpacket\"\naddresses = [%s]\n", addrs(AddrR1, AddrR1v6))
	if c.MTU1 != 0 {
		fmt.Fprintf(&b, "mtu = %d\n", c.MTU1)
	}
	ra(c.RA1)
	if c.Extra != "" {
		b.WriteString("\n" + c.Extra + "\n")
	}
	return b.String()
}

// Ferryd is a ferryd process running in R.
type Ferryd struct {
	Proc    *Proc
	Socket  string
	Config  string // path of the config file
	Log     string // path of ferryd's log (stdout and stderr)
	ctlPath string
}

// StartFerryd writes cfg into dir, starts ferryBin inside R and waits (up
// to 15 s) until `ferryctl -s SOCK show interfaces` answers. On failure the
// error carries ferryd's log. The lab kills ferryd at Close if Stop was not
// called.
func (r *Rig) StartFerryd(ferryBin, ctlBin, dir string, cfg FerryConfig) (*Ferryd, error) {
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(dir, "ferryd.sock")
	}
	f := &Ferryd{
		Socket:  cfg.Socket,
		Config:  filepath.Join(dir, "ferryd.toml"),
		Log:     filepath.Join(dir, "ferryd.log"),
		ctlPath: ctlBin,
	}
	if err := os.WriteFile(f.Config, []byte(cfg.TOML()), 0o600); err != nil {
		return nil, err
	}
	p, err := r.R.StartLog(f.Log, ferryBin, "-c", f.Config)
	if err != nil {
		return nil, err
	}
	f.Proc = p
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if done, werr := p.Exited(); done {
			return nil, fmt.Errorf("ferryd exited during start-up (%v); config:\n%s\nlog:\n%s", werr, cfg.TOML(), p.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, lastErr = f.Ctl(ctx, "show", "interfaces")
		cancel()
		if lastErr == nil {
			return f, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop(syscall.SIGKILL, time.Second)
	return nil, fmt.Errorf("ferryd not ready after 15 s (last ferryctl error: %v); log:\n%s", lastErr, p.Output())
}

// Ctl runs ferryctl against this ferryd and returns its output. The control
// socket is a path in the file system, so ferryctl need not enter R.
func (f *Ferryd) Ctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, f.ctlPath, append([]string{"-s", f.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ferryctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Output is ferryd's log so far.
func (f *Ferryd) Output() string { return f.Proc.Output() }

// Running reports whether ferryd is still alive.
func (f *Ferryd) Running() bool {
	done, _ := f.Proc.Exited()
	return !done
}

// Stop sends SIGTERM and waits up to 10 s; it returns an error unless
// ferryd exits cleanly with status 0.
func (f *Ferryd) Stop() error {
	if err := f.Proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return fmt.Errorf("ferryd stop: %v; log:\n%s", err, f.Proc.Output())
	}
	return nil
}
