package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-router/ferry/bench"
	"github.com/ferry-router/ferry/internal/lab"
)

// Rigs: each contender has one of its own for the whole run, so trials
// alternate between them and a machine that speeds up or slows down (a
// shared VM does, by 2x within minutes) shifts all contenders alike.
// Contenders that never run in the same trials share a rig.
const (
	rigKernel = iota
	rigFerry  // ferryd, then ferryd in poll mode
	rigSpare  // the io-only floor, then ferryd with connected routes only
	numRigs
)

// contenderRigs places every contender; ferry is the ferryd config of
// each (nil: the kernel forwards). Every ferryd runs dual-stack, as the
// kernel's R does for the whole run: IPv6 on both ports, with no router
// advertisements (the hosts are configured statically, and the links
// stay quiet).
var contenderRigs = map[string]struct {
	rig   int
	ferry func(sinkNeighbor string) *lab.FerryConfig
}{
	kernel: {rigKernel, nil},
	ferryd: {rigFerry, func(n string) *lab.FerryConfig { return &lab.FerryConfig{Workers: 1, IPv6: true, NoRA: true, Extra: n} }},
	ferryPoll: {rigFerry, func(n string) *lab.FerryConfig {
		return &lab.FerryConfig{Workers: 1, BusyPollUS: 10000, IPv6: true, NoRA: true, Extra: n}
	}},
	ioOnly: {rigSpare, func(n string) *lab.FerryConfig {
		return &lab.FerryConfig{Workers: 1, Mode: "io-only", IPv6: true, NoRA: true, Extra: n}
	}},
	ferrySingle: {rigSpare, func(n string) *lab.FerryConfig { return &lab.FerryConfig{Workers: 1, IPv6: true, NoRA: true, Extra: n} }},
}

type rigState struct {
	rig       *lab.Rig
	routerMAC string
	neighbor  string // the sink, IPv4 and IPv6, as ferryd [[neighbor]]s
	rps       string // R's rps_cpus now
	running   *contender
}

// contender is a router under test; f is its ferryd while it runs.
type contender struct {
	name  string
	rig   *rigState
	cfg   *lab.FerryConfig // nil for the kernel
	extra string           // the scenario's ferry config it was started with
	f     *lab.Ferryd
	cpus  string
}

type runner struct {
	o          opts
	ctx        context.Context
	dir        string
	labs       []*lab.Lab
	rigs       [numRigs]*rigState
	contenders map[string]*contender
	extras     map[string]string // ferryExtra's, by scenario
	results    []result
	step       int
	started    time.Time
}

// build makes the rigs. One lab per rig: a lab names its namespaces after
// the rig's roles (a, r, b).
func (r *runner) build() error {
	for i := range r.rigs {
		l, err := lab.New()
		if err != nil {
			return err
		}
		r.labs = append(r.labs, l)
		rig, err := lab.NewRig(l, i == rigKernel)
		if err != nil {
			return err
		}
		sinkMAC, err := rig.B.MAC("eth0")
		if err != nil {
			return err
		}
		mac, err := rig.R.MAC("r0")
		if err != nil {
			return err
		}
		// Static neighbours for the sink addresses, so neither router
		// resolves an address nobody answers for.
		var neighbor string
		for _, a := range []string{bench.SinkAddr, bench.SinkAddr6} {
			neighbor += fmt.Sprintf("[[neighbor]]\nip = %q\nmac = %q\ndev = \"r1\"\n", a, sinkMAC)
		}
		rs := &rigState{rig: rig, routerMAC: mac.String(), neighbor: neighbor}
		if i == rigKernel {
			if _, err := rig.R.Run(r.ctx, "ip", "neigh", "replace", bench.SinkAddr, "lladdr", sinkMAC.String(), "dev", "r1", "nud", "permanent"); err != nil {
				return err
			}
			if err := enableIPv6(rig, sinkMAC.String()); err != nil {
				return err
			}
			rig.A.Run(r.ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.AddrB) // resolve neighbours on the way
		} else if err := hostsIPv6(r.ctx, rig); err != nil {
			return err
		}
		r.rigs[i] = rs
	}
	for name, c := range contenderRigs {
		rs := r.rigs[c.rig]
		ct := &contender{name: name, rig: rs}
		if c.ferry != nil {
			ct.cfg = c.ferry(rs.neighbor)
		}
		r.contenders[name] = ct
	}
	return nil
}

// ensure makes e's contender ready on its rig in e's placement: ferryd
// started (stopping whichever other ferryd held the rig) with the
// scenario's extra config, R's RPS set and ferryd's threads pinned. A
// ferryd holding another scenario's extra config (another ruleset) is
// restarted.
func (r *runner) ensure(e entrant, sc *scenario) (*contender, error) {
	c := r.contenders[e.contender]
	if c == nil {
		return nil, fmt.Errorf("no contender %q", e.contender)
	}
	extra, err := r.ferryExtra(sc)
	if err != nil {
		return nil, err
	}
	rs := c.rig
	if c.cfg != nil && (rs.running != c || c.extra != extra) {
		if rs.running != nil {
			if err := rs.running.stop(); err != nil {
				return nil, err
			}
		}
		cfg := *c.cfg
		if extra != "" {
			cfg.Extra += "\n" + extra
		}
		d := filepath.Join(r.dir, slug(c.name))
		os.RemoveAll(d)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		f, err := rs.rig.StartFerryd(r.o.ferryd, r.o.ferryctl, d, cfg)
		if err != nil {
			return nil, err
		}
		c.f, c.extra, c.cpus, rs.running = f, extra, "", c
		if cfg.IPv6 {
			if err := waitDAD(r.ctx, f); err != nil {
				return nil, err
			}
			rs.rig.A.Run(r.ctx, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", addr6B) // resolve neighbours on the way
		}
		rs.rig.A.Run(r.ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.AddrB) // resolve neighbours on the way
	}
	if rs.rps != e.place.rps {
		if err := setRPS(rs.rig, e.place.rps); err != nil {
			return nil, err
		}
		rs.rps = e.place.rps
	}
	if c.f != nil && e.place.cpus != "" && c.cpus != e.place.cpus {
		if err := pin(c.f, e.place.cpus); err != nil {
			return nil, err
		}
		c.cpus = e.place.cpus
	}
	return c, nil
}

// ferryExtra is the config sc appends to every ferryd contender's: its
// ferry field and, for a row with a ruleset of ferryd's (ferryNft), a
// [ruleset] table naming the file it is written to in the run's folder,
// one file per scenario, so each filter row starts ferryd afresh.
func (r *runner) ferryExtra(sc *scenario) (string, error) {
	if sc.ferryNft == "" {
		return sc.ferry, nil
	}
	if x, ok := r.extras[sc.name]; ok {
		return x, nil
	}
	dir, err := filepath.Abs(r.dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ferry-"+slug(sc.name)+".nft")
	if err := os.WriteFile(path, []byte(sc.ferryNft), 0o600); err != nil {
		return "", err
	}
	x := fmt.Sprintf("[ruleset]\nfile = %q\n", path)
	if sc.ferry != "" {
		x = sc.ferry + "\n" + x
	}
	if r.extras == nil {
		r.extras = map[string]string{}
	}
	r.extras[sc.name] = x
	return x, nil
}

// slug makes a contender's or scenario's name a file name.
func slug(name string) string {
	return strings.NewReplacer(" ", "-", ",", "", "(", "", ")", "", "=", "").Replace(name)
}

// checkRulesets shows that the routers held sc's rulesets while they were
// measured: ferryd's `ferryctl show ruleset` and the kernel's `nft list
// ruleset` must list every drop rule of the row's ruleset, and the
// counter of its last rule says how many packets went through the whole
// chain (a filter row's counter accept, which every forwarded packet
// reaches) or how many connections were translated (the masquerade rule's
// counter: a nat chain sees a connection's first packet only). A NAT row
// also shows the translations themselves (checkNAT). A router that lists
// a different number of rules, or translated nothing, ends the run.
func (r *runner) checkRulesets(sc *scenario) error {
	check := func(who, want, listing string) error {
		n, w := strings.Count(listing, " drop\n"), strings.Count(want, " drop\n")
		if n != w {
			return fmt.Errorf("%s lists %d drop rules, want %d:\n%.2000s", who, n, w, listing)
		}
		m := regexp.MustCompile(`counter packets (\d+) bytes \d+ (accept|masquerade)`).FindStringSubmatch(listing)
		if m == nil {
			return fmt.Errorf("%s lists no counter accept or counter masquerade:\n%.2000s", who, listing)
		}
		if m[2] == "masquerade" {
			fmt.Printf("      %-39s %s connections masqueraded\n", who+" ruleset:", m[1])
			return nil
		}
		fmt.Printf("      %-39s %d drop rules loaded, %s packets reached the final accept\n", who+" ruleset:", n, m[1])
		return nil
	}
	seen := map[string]bool{}
	for _, e := range sc.entrants {
		if seen[e.contender] {
			continue
		}
		seen[e.contender] = true
		c := r.contenders[e.contender]
		switch {
		case c.cfg == nil && sc.kernelNft != "":
			out, err := c.rig.rig.R.Run(r.ctx, "nft", "list", "ruleset")
			if err != nil {
				return fmt.Errorf("nft list ruleset: %v: %s", err, out)
			}
			if err := check(c.name, sc.kernelNft, string(out)); err != nil {
				return err
			}
		case c.cfg != nil && sc.ferryNft != "" && c.f != nil:
			out, err := c.f.Ctl(r.ctx, "show", "ruleset")
			if err != nil {
				return err
			}
			if err := check(c.name, sc.ferryNft, string(out)); err != nil {
				return err
			}
		}
		if strings.Contains(sc.kernelNft+sc.ferryNft, "masquerade") {
			if err := r.checkNAT(c, sc); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNAT shows a masquerade row's translations after its trials. The
// kernel's: its connection-tracking table's size and limit (every flow
// needs an entry, and the limit, nf_conntrack_max, is the host's). ferryd's:
// `ferryctl show nat` must hold a UDP mapping for every inside endpoint
// the generator used (its source ports: one per flow up to 64,000), each
// to r1's address (lab.AddrR1), with no pool exhausted and no table full;
// its conntrack and NAT tables hold 262,144 by default, four times the
// row's flows.
func (r *runner) checkNAT(c *contender, sc *scenario) error {
	if c.cfg == nil {
		var v [2]string
		for i, f := range []string{"nf_conntrack_count", "nf_conntrack_max"} {
			out, err := c.rig.rig.R.Run(r.ctx, "cat", "/proc/sys/net/netfilter/"+f)
			if err != nil {
				return fmt.Errorf("%s: %v: %s", f, err, out)
			}
			v[i] = strings.TrimSpace(string(out))
		}
		fmt.Printf("      %-39s %s connections tracked (nf_conntrack_max %s)\n", c.name+" conntrack:", v[0], v[1])
		return nil
	}
	if c.f == nil {
		return nil
	}
	out, err := c.f.Ctl(r.ctx, "show", "nat")
	if err != nil {
		return err
	}
	listing := string(out)
	m := regexp.MustCompile(`# (\d+) mappings \(tcp \d+, udp (\d+), icmp \d+\).*pool exhausted (\d+), table full (\d+)`).FindStringSubmatch(listing)
	if m == nil {
		return fmt.Errorf("%s: show nat lists no summary:\n%.2000s", c.name, listing)
	}
	udp, _ := strconv.Atoi(m[2])
	want := min(sc.gen.flows, 64000)
	lines := regexp.MustCompile(`(?m)^udp +\S+ -> (\S+):\d+ `).FindAllStringSubmatch(listing, -1)
	for _, l := range lines {
		if l[1] != lab.AddrR1 {
			return fmt.Errorf("%s: a mapping to %s, not r1's %s:\n%.2000s", c.name, l[1], lab.AddrR1, listing)
		}
	}
	if udp < want || len(lines) == 0 || m[3] != "0" || m[4] != "0" {
		return fmt.Errorf("%s: %d UDP mappings (want %d, to %s), pool exhausted %s, table full %s:\n%.2000s", c.name, udp, want, lab.AddrR1, m[3], m[4], listing)
	}
	first := strings.SplitN(listing, "\n", 2)[0]
	fmt.Printf("      %-39s %s mappings, %d UDP, all to %s (first: %s)\n", c.name+" nat:", m[1], udp, lab.AddrR1, strings.Join(strings.Fields(first), " "))
	return nil
}

// retire stops every ferryd that none of the scenarios left will use, so
// an idle worker wakes for nothing while others are measured.
func (r *runner) retire(left []scenario) {
	used := map[string]bool{}
	for _, sc := range left {
		for _, e := range sc.entrants {
			used[e.contender] = true
		}
	}
	for _, rs := range r.rigs {
		if c := rs.running; c != nil && !used[c.name] {
			if err := c.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "ferrybench:", err)
			}
		}
	}
}

func (r *runner) stopAll() error {
	var first error
	for _, rs := range r.rigs {
		if rs != nil && rs.running != nil {
			if err := rs.running.stop(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (c *contender) stop() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Stop()
	c.f = nil
	if c.rig.running == c {
		c.rig.running = nil
	}
	return err
}

// setRPS steers R's receive processing to the CPUs in mask.
func setRPS(rig *lab.Rig, mask string) error {
	for _, dev := range []string{"r0", "r1"} {
		if _, err := rig.R.Run(context.Background(), "sh", "-c", fmt.Sprintf("echo %s > /sys/class/net/%s/queues/rx-0/rps_cpus", mask, dev)); err != nil {
			return fmt.Errorf("rps: %v", err)
		}
	}
	return nil
}

// pin sets the CPUs of every ferryd thread.
func pin(f *lab.Ferryd, cpus string) error {
	pid := f.Proc.Cmd.Process.Pid
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("pin ferryd: %v: %s", err, out)
	}
	return nil
}
