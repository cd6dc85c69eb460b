package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferry-router/ferry/config"
)

func hostLinks(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestKernelRouterPing(t *testing.T) {
	l := NewT(t)
	before := hostLinks(t)
	r := MustRig(l, true)
	if after := hostLinks(t); after != before {
		t.Errorf("building the rig changed the host's links:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	out := r.A.MustRun("ping", "-c", "3", "-i", "0.05", "-W", "1", AddrB)
	if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping A->B through the kernel router lost packets:\n%s", out)
	}
	out = r.B.MustRun("ping", "-c", "3", "-i", "0.05", "-W", "1", AddrA)
	if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping B->A through the kernel router lost packets:\n%s", out)
	}
}

// In ferry mode nothing in R may answer: that is what makes a passing e2e
// test proof that ferryd did the work.
func TestFerryModeKernelSilent(t *testing.T) {
	l := NewT(t)
	r := MustRig(l, false)
	out, err := r.A.Run(context.Background(), "ping", "-c", "2", "-i", "0.2", "-W", "1", AddrR0)
	if err == nil {
		t.Fatalf("R's kernel answered ping in ferry mode:\n%s", out)
	}
	if err := r.SetKernelRouter(true); err != nil {
		t.Fatal(err)
	}
	r.A.MustRun("ping", "-c", "1", "-W", "2", AddrB)
	if err := r.SetKernelRouter(false); err != nil {
		t.Fatal(err)
	}
	if out, err := r.A.Run(context.Background(), "ping", "-c", "1", "-W", "1", AddrB); err == nil {
		t.Fatalf("kernel still forwards after switching back to ferry mode:\n%s", out)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRig(l, true)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	p, err := r.B.Start("sleep", "60")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	names := []string{r.A.Name, r.R.Name, r.B.Name}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if done, _ := p.Exited(); !done {
		t.Error("background process survived Close")
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); !os.IsNotExist(err) {
			t.Errorf("namespace %s survived Close (%v)", n, err)
		}
	}
	if _, err := l.Netns("x"); err == nil {
		t.Error("Netns on a closed lab succeeded")
	}
}

func TestReapOnlyOrphans(t *testing.T) {
	live := NewT(t)
	liveNS := live.MustNetns("live")

	// An orphan: lab-shaped name, no lock holder (its process "died").
	orphan := "fy0a0b0c-orph"
	if out, err := exec.Command("ip", "netns", "add", orphan).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", orphan).Run() })
	// Not lab-shaped: Reap must leave it alone.
	foreign := "fyx" + live.ID[2:] + "-keep"
	if out, err := exec.Command("ip", "netns", "add", foreign).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", foreign).Run() })

	removed, err := Reap()
	if err != nil {
		t.Fatal(err)
	}
	// Another test binary's lab may have reaped the orphan first, and may
	// have left orphans of its own: what must hold is that the orphan is
	// gone and nothing live or foreign was touched.
	if _, err := os.Stat(filepath.Join(netnsDir, orphan)); !os.IsNotExist(err) {
		t.Errorf("orphan %s survived Reap (removed %v)", orphan, removed)
	}
	for _, n := range removed {
		if !nsPattern.MatchString(n) || strings.HasPrefix(n, live.ID) {
			t.Errorf("Reap removed %s", n)
		}
	}
	for _, keep := range []string{liveNS.Name, foreign} {
		if _, err := os.Stat(filepath.Join(netnsDir, keep)); err != nil {
			t.Errorf("Reap removed %s: %v", keep, err)
		}
	}
}

func TestDoEntersNamespace(t *testing.T) {
	l := NewT(t)
	a := l.MustNetns("a")
	b := l.MustNetns("b")
	if err := l.Veth(a, "v0", b, "v1"); err != nil {
		t.Fatal(err)
	}
	var idx int
	err := a.Do(func() error {
		ifi, err := unixIfIndex("v0")
		idx = ifi
		return err
	})
	if err != nil {
		t.Fatalf("v0 not visible inside a: %v", err)
	}
	if idx <= 0 {
		t.Fatalf("ifindex %d", idx)
	}
	// The calling thread must be back in the host namespace.
	if _, err := unixIfIndex("v0"); err == nil {
		t.Error("v0 visible outside the namespace after Do")
	}
}

func unixIfIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

func TestFerryConfigTOML(t *testing.T) {
	got := FerryConfig{Socket: "/tmp/x/ferryd.sock", MTU1: 1300}.TOML()
	for _, want := range []string{
		"workers = 2",
		`socket = "/tmp/x/ferryd.sock"`,
		`name = "r0"`, `addresses = ["192.0.2.1/24"]`,
		`name = "r1"`, `addresses = ["198.51.100.1/24"]`, "mtu = 1300",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "[[route]]") {
		t.Errorf("rig config must have no routes (Unrouted must stay unrouted):\n%s", got)
	}
}

// fakeFerry writes stand-ins for ferryd and ferryctl, so the start/stop
// plumbing is tested without depending on the real daemon: the fake daemon
// lets R's kernel forward and marks readiness with the socket path.
func fakeFerry(t *testing.T, dir, startup string) (ferryd, ferryctl string) {
	t.Helper()
	ferryd = filepath.Join(dir, "fake-ferryd")
	ferryctl = filepath.Join(dir, "fake-ferryctl")
	d := `#!/usr/bin/env bash
set -e
sock=$(awk -F'"' '/^socket/{print $2}' "$2")
` + startup + `
ip addr add 192.0.2.1/24 dev r0
ip addr add 198.51.100.1/24 dev r1
sysctl -q -w net.ipv4.ip_forward=1
echo "fake ferryd running"
trap 'echo "fake ferryd stopping"; exit 0' TERM
touch "$sock"
while :; do sleep 0.05; done
`
	c := "#!/usr/bin/env bash\n[ \"$1\" = -s ] && [ -e \"$2\" ] && echo \"r0 r1\"\n"
	if err := os.WriteFile(ferryd, []byte(d), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ferryctl, []byte(c), 0o755); err != nil {
		t.Fatal(err)
	}
	return ferryd, ferryctl
}

func TestStartStopFerrydPlumbing(t *testing.T) {
	l := NewT(t)
	r := MustRig(l, false)
	dir := t.TempDir()
	fd, fc := fakeFerry(t, dir, "")
	f, err := r.StartFerryd(fd, fc, dir, FerryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r.A.MustRun("ping", "-c", "1", "-W", "2", AddrB)
	if out, err := f.Ctl(context.Background(), "show", "interfaces"); err != nil || !strings.Contains(string(out), "r0") {
		t.Errorf("Ctl: %v %q", err, out)
	}
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	if f.Running() {
		t.Error("still running after Stop")
	}
	log, err := os.ReadFile(f.Log)
	if err != nil || !strings.Contains(string(log), "fake ferryd stopping") {
		t.Errorf("log file %s: %v %q", f.Log, err, log)
	}
}

func TestStartFerrydReportsEarlyExit(t *testing.T) {
	l := NewT(t)
	r := MustRig(l, false)
	dir := t.TempDir()
	fd, fc := fakeFerry(t, dir, `echo "config.toml:3: bad key" >&2; exit 1`)
	_, err := r.StartFerryd(fd, fc, dir, FerryConfig{})
	if err == nil || !strings.Contains(err.Error(), "config.toml:3: bad key") {
		t.Fatalf("want an error carrying ferryd's log, got %v", err)
	}
}

func TestFerryConfigIPv6(t *testing.T) {
	c := FerryConfig{Socket: "/tmp/x.sock", IPv6: true, MTU1: 1300, RA0: "mtu = 1500"}
	s := c.TOML()
	for _, want := range []string{`addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]`, `addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]`,
		"[interface.ra]\nmax_interval_s = 30\nmtu = 1500", "mtu = 1300\n\n[interface.ra]"} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %q:\n%s", want, s)
		}
	}
	if _, err := config.Parse("rig.toml", []byte(s)); err != nil {
		t.Errorf("ferryd would refuse the config: %v", err)
	}
	c.NoRA = true
	if s := c.TOML(); strings.Contains(s, "[interface.ra]") {
		t.Errorf("NoRA config has RAs:\n%s", s)
	}
}
