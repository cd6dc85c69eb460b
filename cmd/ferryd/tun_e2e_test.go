package main_test

// End-to-end tests of TUN ports. The rig's R hosts both ferryd and, as a
// VPN gateway's kernel would, a kernel router in front of ferry's TUN:
//
//	A eth0 192.0.2.2 ── r0 [R's kernel 192.0.2.1] ── fytun ══ [ferryd] r1 ── eth0 198.51.100.2 B
//	                        route 198.51.100.0/24     203.0.113.2 │ 203.0.113.1     198.51.100.1
//	                        via 203.0.113.1            (kernel)   │ (ferry)
//
// ferryd creates fytun and owns it (TUN, multi-queue, vnet header,
// offloads); R's kernel has 203.0.113.2 on its side and routes B's network
// into it, exactly as a VPN gateway's kernel routes a tunnel's decrypted
// traffic. So A's ping, traceroute and iperf3 enter ferry through the TUN
// as the kernel's GSO super-packets, and ferry forwards them out of the
// AF_PACKET port r1 to B, and back.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

const (
	tunName    = "fytun"
	tunFerry   = "203.0.113.1"
	tunKernel  = "203.0.113.2"
	tunNetwork = "203.0.113.0/24"

	// IPv6: A's link 2001:db8:1::/64 (R's kernel ::1), the TUN's
	// 2001:db8:3::/64 (ferry ::1, R's kernel ::2), B's 2001:db8:2::/64.
	tunA6      = "2001:db8:1::2"
	tunR06     = "2001:db8:1::1"
	tunFerry6  = "2001:db8:3::1"
	tunKernel6 = "2001:db8:3::2"
	tunB6      = "2001:db8:2::2"
)

// tunRig builds the rig above and starts ferryd with tunTOML (mtu > 0 sets
// the TUN's MTU) and extra appended to its [[interface]] table.
func tunRig(t *testing.T, mtu int, extra string) (*lab.Rig, *lab.Ferryd) {
	return tunTapRig(t, "tun", 2, mtu, extra)
}

// tunTapRig is tunRig with a TUN or a TAP ("tap": R's kernel and ferry
// resolve each other with ARP across it).
func tunTapRig(t *testing.T, kind string, workers, mtu int, extra string) (*lab.Rig, *lab.Ferryd) {
	t.Helper()
	l := lab.NewT(t)
	needTools(t, "ping", "traceroute", "iperf3", "tcpdump")
	ferryd, ferryctl := binaries(t)
	r := lab.MustRig(l, false)
	// R's kernel routes A's traffic into the TUN; r1 is ferry's alone.
	r.R.MustRun("ip", "addr", "add", lab.AddrR0+"/24", "dev", "r0")
	r.R.MustRun("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	r.R.MustRun("sysctl", "-q", "-w", "net.ipv6.conf.r0.disable_ipv6=0")
	r.R.MustRun("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	r.R.MustRun("ip", "addr", "add", tunR06+"/64", "dev", "r0", "nodad")
	r.A.MustRun("ip", "addr", "add", tunA6+"/64", "dev", "eth0", "nodad")
	r.A.MustRun("ip", "-6", "route", "add", "default", "via", tunR06)
	r.B.MustRun("ip", "addr", "add", tunB6+"/64", "dev", "eth0", "nodad")
	r.B.MustRun("ip", "-6", "route", "add", "default", "via", lab.AddrR1v6)
	ifaces := fmt.Sprintf(`[[interface]]
name = %q
kind = %q
addresses = ["%s/24", "%s/64"]
%s
%s

[[interface]]
name = "r1"
kind = "afpacket"
addresses = ["%s/24", "%s/64"]

[[route]]
prefix = %q
via = %q

[[route]]
prefix = "2001:db8:1::/64"
via = %q
`, tunName, kind, tunFerry, tunFerry6, map[bool]string{true: fmt.Sprintf("mtu = %d", mtu)}[mtu > 0], extra,
		lab.AddrR1, lab.AddrR1v6, lab.NetA, tunKernel, tunKernel6)
	f, err := r.StartFerryd(ferryd, ferryctl, t.TempDir(), lab.FerryConfig{Workers: workers, Interfaces: ifaces})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferryd log:\n%s", f.Output())
		}
	})
	kernelSideOfTUN(t, r)
	return r, f
}

// kernelSideOfTUN gives R's kernel its address on the TUN and the route
// through it (again after the device is re-created).
func kernelSideOfTUN(t *testing.T, r *lab.Rig) {
	t.Helper()
	r.R.MustRun("ip", "addr", "replace", tunKernel+"/24", "dev", tunName)
	r.R.MustRun("ip", "route", "replace", lab.NetB, "via", tunFerry, "dev", tunName)
	r.R.MustRun("sysctl", "-q", "-w", "net.ipv6.conf."+tunName+".disable_ipv6=0")
	r.R.MustRun("ip", "addr", "replace", tunKernel6+"/64", "dev", tunName, "nodad")
	r.R.MustRun("ip", "-6", "route", "replace", lab.NetBv6, "via", tunFerry6, "dev", tunName)
}

func TestFerrydTUNForwarding(t *testing.T) { tunForwarding(t, "tun") }

// TestFerrydTUNTapForwarding is the same through a TAP device: layer 2,
// ARP both ways across it, ferry's own MAC.
func TestFerrydTUNTapForwarding(t *testing.T) { tunForwarding(t, "tap") }

func tunForwarding(t *testing.T, kind string) {
	r, f := tunTapRig(t, kind, 2, 0, "")
	t.Run("ping A to B", func(t *testing.T) { checkPing(t, r.A, lab.AddrB) })
	t.Run("ping B to A", func(t *testing.T) { checkPing(t, r.B, lab.AddrA) })
	t.Run("ping ferry's TUN address", func(t *testing.T) { checkPing(t, r.A, tunFerry) })
	t.Run("traceroute", func(t *testing.T) {
		out, err := run(t, r.A, 60*time.Second, "traceroute", "-n", "-q1", "-w1", "-N1", lab.AddrB)
		hops := map[int]string{}
		for _, m := range hopRE.FindAllStringSubmatch(out, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			hops[n] = m[2]
		}
		if err != nil || hops[1] != lab.AddrR0 || hops[2] != tunFerry || hops[3] != lab.AddrB || len(hops) != 3 {
			t.Errorf("traceroute: want hops %s (R's kernel), %s (ferry, TUN), %s; got %v (err %v):\n%s",
				lab.AddrR0, tunFerry, lab.AddrB, hops, err, out)
		}
	})
	t.Run("ping6 A to B", func(t *testing.T) { checkPing6(t, r.A, tunB6) })
	t.Run("ping6 B to A", func(t *testing.T) { checkPing6(t, r.B, tunA6) })
	t.Run("traceroute -6", func(t *testing.T) {
		out, err := run(t, r.A, 60*time.Second, "traceroute", "-6", "-n", "-q1", "-w1", "-N1", tunB6)
		hops := map[int]string{}
		for _, m := range hopRE.FindAllStringSubmatch(out, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			hops[n] = m[2]
		}
		if err != nil || hops[1] != tunR06 || hops[2] != tunFerry6 || hops[3] != tunB6 || len(hops) != 3 {
			t.Errorf("traceroute -6: want hops %s, %s (ferry, TUN), %s; got %v (err %v):\n%s",
				tunR06, tunFerry6, tunB6, hops, err, out)
		}
	})
	iperfServer(t, r)
	t.Run("iperf3 TCP A to B", func(t *testing.T) { checkTCP(t, r, false) })
	t.Run("iperf3 TCP B to A", func(t *testing.T) { checkTCP(t, r, true) })
	t.Run("iperf3 UDP", func(t *testing.T) { checkUDP(t, r) })
	t.Run("iperf3 -6 TCP both ways", func(t *testing.T) {
		r.B.MustStart("iperf3", "-s", "-B", tunB6, "-p", "5206")
		waitFor(t, 10*time.Second, "iperf3 -6 server", func() bool {
			out, _ := run(t, r.B, 5*time.Second, "ss", "-Hltn", "sport = :5206")
			return strings.Contains(out, "5206")
		})
		for _, rev := range []string{"", "-R"} {
			args := []string{"iperf3", "-6", "-c", tunB6, "-p", "5206", "-t", "3", "-J"}
			if rev != "" {
				args = append(args, rev)
			}
			out, err := run(t, r.A, 30*time.Second, args...)
			var res iperfResult
			if jerr := json.Unmarshal([]byte(out), &res); err != nil || jerr != nil || res.End.SumReceived.BitsPerSec < 1e9 {
				t.Errorf("%s: %.2f Gbit/s, want > 1 (err %v %v):\n%s", strings.Join(args, " "), res.End.SumReceived.BitsPerSec/1e9, err, jerr, out)
				continue
			}
			t.Logf("iperf3 -6 TCP %s: %.2f Gbit/s", rev, res.End.SumReceived.BitsPerSec/1e9)
		}
	})
	t.Run("counters", func(t *testing.T) {
		out := ctl(t, f, "-j", "show", "interfaces")
		if !regexp.MustCompile(`"kind":\s*"` + kind + `"`).MatchString(out) {
			t.Errorf("show interfaces: no %s port:\n%s", kind, out)
		}
		for _, reason := range []string{"tun_not_ip", "vnet_hdr_invalid", "rx_truncated", "tx_ring_full"} {
			if n := dropCount(out, reason); n != 0 {
				t.Errorf("%s counted %d", reason, n)
			}
		}
		// iperf3 went both ways: the TUN's frames must have crossed as
		// GSO super-packets, not as MTU-sized segments.
		var ports []struct {
			Name      string `json:"name"`
			RxPackets uint64 `json:"rx_packets"`
			RxBytes   uint64 `json:"rx_bytes"`
			TxPackets uint64 `json:"tx_packets"`
			TxBytes   uint64 `json:"tx_bytes"`
		}
		if err := json.Unmarshal([]byte(out), &ports); err != nil || len(ports) != 2 {
			t.Fatalf("show interfaces -j: %v\n%s", err, out)
		}
		p := ports[0]
		rxAvg, txAvg := p.RxBytes/max(p.RxPackets, 1), p.TxBytes/max(p.TxPackets, 1)
		t.Logf("%s: %d bytes per frame read, %d per frame written", p.Name, rxAvg, txAvg)
		if rxAvg < 4000 || txAvg < 4000 {
			t.Errorf("%s: %d bytes per frame read, %d written: GSO super-packets did not cross whole", p.Name, rxAvg, txAvg)
		}
		if kind == "tap" {
			if n := ctl(t, f, "show", "neighbors"); !strings.Contains(n, tunKernel) {
				t.Errorf("no ARP entry for R's kernel across the TAP:\n%s", n)
			}
		}
		t.Logf("show interfaces:\n%s", ctl(t, f, "show", "interfaces"))
	})
	stopFerry(t, f)
	if out, err := run(t, r.R, 5*time.Second, "ip", "link", "show", tunName); err == nil {
		t.Errorf("the TUN ferryd created outlived it:\n%s", out)
	}
}

// TestFerrydTUNRecreate deletes the TUN under ferryd: the port goes down
// (drops counted as port_down), r1 keeps working, and when a device of the
// same name is back, ferryd re-attaches and traffic resumes without a
// restart.
func TestFerrydTUNRecreate(t *testing.T) {
	r, f := tunRig(t, 0, "")
	checkPing(t, r.A, lab.AddrB)
	r.R.MustRun("ip", "link", "del", tunName)
	time.Sleep(300 * time.Millisecond)
	// B's pings towards A die at ferry's TUN port, counted.
	run(t, r.B, 10*time.Second, "ping", "-c", "3", "-i", "0.2", "-W", "1", lab.AddrA)
	checkPing(t, r.B, lab.AddrR1) // the other port is unaffected
	out := ctl(t, f, "show", "interfaces")
	if dropCount(out, "port_down") == 0 {
		t.Errorf("no port_down drops while the TUN was gone:\n%s", out)
	}
	waitFor(t, 5*time.Second, "TUN port down in show interfaces", func() bool {
		return portUp(t, f, tunName) == "false"
	})

	r.R.MustRun("ip", "tuntap", "add", "dev", tunName, "mode", "tun", "multi_queue")
	waitFor(t, 5*time.Second, "TUN port re-attached", func() bool { return portUp(t, f, tunName) == "true" })
	kernelSideOfTUN(t, r)
	checkPing(t, r.A, lab.AddrB)
	checkPing(t, r.B, lab.AddrA)
	if js := ctl(t, f, "-j", "show", "interfaces"); !regexp.MustCompile(`"reattached":\s*1`).MatchString(js) {
		t.Errorf("reattached not counted:\n%s", js)
	}
	stopFerry(t, f)
	// The re-created device was not ferry's: it stays, and the lab's
	// namespace takes it away.
}

// TestFerrydTUNMSSClamp: a 1380-byte TUN, and B dropping every ICMP
// destination unreachable, so path MTU discovery cannot work towards B.
// ferry clamps the MSS of the SYN and the SYN-ACK to 1340; tcpdump on B
// sees it, and TCP carries data both ways.
func TestFerrydTUNMSSClamp(t *testing.T) {
	needTools(t, "nft")
	r, f := tunRig(t, 1380, "")
	r.B.MustRun("nft", "add table inet noicmp")
	r.B.MustRun("nft", "add chain inet noicmp in { type filter hook input priority 0 ; }")
	r.B.MustRun("nft", "add rule inet noicmp in icmp type destination-unreachable drop")
	if out := r.R.MustRun("ip", "link", "show", tunName); !strings.Contains(out, "mtu 1380") {
		t.Fatalf("TUN MTU not 1380:\n%s", out)
	}
	td := r.B.MustStart("tcpdump", "-l", "-n", "-v", "-i", "eth0", "tcp[tcpflags] & tcp-syn != 0")
	tdTUN := r.R.MustStart("tcpdump", "-l", "-n", "-v", "-i", tunName, "tcp[tcpflags] & tcp-syn != 0")
	time.Sleep(time.Second)
	iperfServer(t, r)
	checkTCP(t, r, false)
	checkTCP(t, r, true)
	time.Sleep(300 * time.Millisecond)
	td.Stop(syscall.SIGINT, 5*time.Second)
	tdTUN.Stop(syscall.SIGINT, 5*time.Second)
	dump := td.Output()
	t.Logf("tcpdump on B (SYNs):\n%s", dump)
	syn := regexp.MustCompile(`192\.0\.2\.2\.\d+ > 198\.51\.100\.2\.5201: Flags \[S\].*mss (\d+)`)
	m := syn.FindAllStringSubmatch(dump, -1)
	if len(m) == 0 {
		t.Fatal("tcpdump on B saw no SYN from A")
	}
	for _, s := range m {
		if s[1] != "1340" {
			t.Errorf("SYN reached B with mss %s, want 1340 (1380 - 40)", s[1])
		}
	}
	// B answers with its own MSS (1460); ferry clamps the SYN-ACK on its
	// way into the TUN as well.
	t.Logf("tcpdump on R's %s (SYNs):\n%s", tunName, tdTUN.Output())
	synAck := regexp.MustCompile(`198\.51\.100\.2\.5201 > 192\.0\.2\.2\.\d+: Flags \[S\.\].*mss (\d+)`)
	m = synAck.FindAllStringSubmatch(tdTUN.Output(), -1)
	if len(m) == 0 {
		t.Error("tcpdump on the TUN saw no SYN-ACK from B")
	}
	for _, s := range m {
		if s[1] != "1340" {
			t.Errorf("SYN-ACK left ferry into the TUN with mss %s, want 1340", s[1])
		}
	}
	stopFerry(t, f)
}

// TestFerrydTUNThroughput measures one iperf3 TCP stream A to B through
// ferry's TUN path and, in the same run, through the kernel forwarding
// across the plain veth rig. It reports; the benchmark asserts.
func TestFerrydTUNThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput comparison skipped in -short mode")
	}
	k := lab.MustRig(lab.NewT(t), true)
	iperfServer(t, k)
	resK, ok := iperfClient(t, k, "-t", "5")
	k.Lab.Close()
	r, f := tunRig(t, 0, "")
	iperfServer(t, r)
	resT, ok2 := iperfClient(t, r, "-t", "5")
	if ok && ok2 {
		t.Logf("iperf3 -c %s -t 5, one TCP stream: kernel across veth %.2f Gbit/s; ferry through the TUN %.2f Gbit/s (%.2fx)",
			lab.AddrB, resK.End.SumReceived.BitsPerSec/1e9, resT.End.SumReceived.BitsPerSec/1e9,
			resT.End.SumReceived.BitsPerSec/resK.End.SumReceived.BitsPerSec)
	}
	if res8, ok := iperfClient(t, r, "-t", "5", "-P", "8"); ok {
		t.Logf("iperf3 -c %s -t 5 -P 8 through the TUN (2 workers, 2 queues): %.2f Gbit/s",
			lab.AddrB, res8.End.SumReceived.BitsPerSec/1e9)
	}
	stopFerry(t, f)
}

// portUp is the "up" field of port name in `ferryctl -j show interfaces`.
func portUp(t *testing.T, f *lab.Ferryd, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := f.Ctl(ctx, "-j", "show", "interfaces", name)
	if err != nil {
		return ""
	}
	m := regexp.MustCompile(`"up":\s*(true|false)`).FindStringSubmatch(string(out))
	if m == nil {
		return ""
	}
	return m[1]
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// wireguardGo is the wireguard-go version the VPN test builds from the Go
// module proxy (the module is golang.zx2c4.com/wireguard; its main package
// is wireguard-go). scripts/deps.sh downloads it ahead.
const wireguardGo = "golang.zx2c4.com/wireguard@v0.0.0-20260522210424-ecfc5a8d5446"

// buildWireGuardGo installs wireguard-go into a temporary directory.
func buildWireGuardGo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "install", wireguardGo)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s (run scripts/deps.sh with the module proxy reachable): %v\n%s", wireguardGo, err, out)
	}
	return filepath.Join(dir, "wireguard")
}

// TestFerrydTUNWireGuardVPN: ferry as a VPN gateway, for real. The client
// A reaches the gateway R through a WireGuard tunnel (wireguard-go and
// wg from wireguard-tools, as this kernel has no WireGuard module); R's
// kernel routes the tunnel's decrypted traffic into ferry's TUN, and ferry
// forwards it to the server B, and back:
//
//	A wgc 203.0.113.130 ═══ WireGuard over 192.0.2.0/24 ═══ wgr 203.0.113.129 R
//	R: route 198.51.100.0/24 via 203.0.113.1 dev fytun ─ ferry ─ r1 ─ B 198.51.100.2
//	ferry: route 203.0.113.128/25 via 203.0.113.2 (R's kernel, across the TUN)
func TestFerrydTUNWireGuardVPN(t *testing.T) {
	needTools(t, "wg")
	wggo := buildWireGuardGo(t)
	// One worker: two wireguard-go processes, iperf3 and ferry share the
	// VM's two cores, and a second busy-polling worker only takes CPU
	// from the tunnel (UDP at 100 Mbit/s then lost up to 18% in
	// wireguard-go's sockets, none in ferry).
	r, f := tunTapRig(t, "tun", 1, 0, "")
	// ferry routes the VPN clients' range back into the TUN.
	ctl(t, f, "route", "add", "203.0.113.128/25", "via", tunKernel)

	// Names of their own: wireguard-go's control sockets live in the
	// shared /var/run/wireguard, not in the namespace.
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	wgc, wgr := "wgc"+suffix, "wgr"+suffix
	t.Cleanup(func() {
		os.Remove("/var/run/wireguard/" + wgc + ".sock")
		os.Remove("/var/run/wireguard/" + wgr + ".sock")
	})
	dir := t.TempDir()
	key := func(ns *lab.Netns, name string) (priv, pub string) {
		priv = filepath.Join(dir, name+".key")
		k := strings.TrimSpace(ns.MustRun("wg", "genkey"))
		if err := os.WriteFile(priv, []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return priv, strings.TrimSpace(ns.MustRun("sh", "-c", "wg pubkey < "+priv))
	}
	cPriv, cPub := key(r.A, "client")
	rPriv, rPub := key(r.R, "gateway")
	startWG := func(ns *lab.Netns, name string) {
		p := ns.MustStart("env", "WG_PROCESS_FOREGROUND=1", wggo, "-f", name)
		waitFor(t, 10*time.Second, "wireguard-go "+name, func() bool {
			_, err := os.Stat("/var/run/wireguard/" + name + ".sock")
			if done, _ := p.Exited(); done {
				t.Fatalf("wireguard-go %s exited:\n%s", name, p.Output())
			}
			return err == nil
		})
	}
	startWG(r.A, wgc)
	startWG(r.R, wgr)
	r.R.MustRun("wg", "set", wgr, "private-key", rPriv, "listen-port", "51820",
		"peer", cPub, "allowed-ips", "203.0.113.130/32")
	r.R.MustRun("ip", "addr", "add", "203.0.113.129/25", "dev", wgr)
	r.R.MustRun("ip", "link", "set", wgr, "up")
	r.A.MustRun("wg", "set", wgc, "private-key", cPriv,
		"peer", rPub, "endpoint", lab.AddrR0+":51820", "allowed-ips", "198.51.100.0/24,203.0.113.0/24",
		"persistent-keepalive", "25")
	r.A.MustRun("ip", "addr", "add", "203.0.113.130/25", "dev", wgc)
	r.A.MustRun("ip", "link", "set", wgc, "up")
	// The server's network through the tunnel, not through R's kernel.
	r.A.MustRun("ip", "route", "replace", lab.NetB, "dev", wgc)

	t.Run("ping client to server", func(t *testing.T) { checkPing(t, r.A, lab.AddrB) })
	t.Run("ping server to client", func(t *testing.T) { checkPing(t, r.B, "203.0.113.130") })
	t.Run("handshake", func(t *testing.T) {
		if out := r.R.MustRun("wg", "show", wgr, "transfer"); !strings.Contains(out, cPub) {
			t.Errorf("no traffic from the client's peer on the gateway:\n%s", out)
		} else {
			t.Logf("wg show %s transfer: %s", wgr, out)
		}
	})
	iperfServer(t, r)
	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprintf("iperf3 TCP reverse=%v", reverse), func(t *testing.T) {
			args := []string{"-t", "3"}
			if reverse {
				args = append(args, "-R")
			}
			res, ok := iperfClient(t, r, args...)
			if !ok {
				return
			}
			bps := res.End.SumReceived.BitsPerSec
			t.Logf("iperf3 TCP through WireGuard and ferry, reverse=%v: %.2f Gbit/s", reverse, bps/1e9)
			if bps < 100e6 {
				t.Errorf("%.3f Gbit/s, want > 0.1 (stalled?)", bps/1e9)
			}
		})
	}
	t.Run("iperf3 UDP", func(t *testing.T) { checkUDP(t, r) })
	if out := ctl(t, f, "show", "interfaces"); dropCount(out, "tun_not_ip") != 0 {
		t.Errorf("tun_not_ip counted:\n%s", out)
	}
	stopFerry(t, f)
}

// TestFerrydTUNMasquerade is the VPN gateway's usual job: clients that
// come in through the TUN leave masqueraded behind ferry's uplink address.
// B has no route back to A's or the TUN's network, so only translated
// traffic can work. The ruleset is added to the running ferryd by a
// reload.
func TestFerrydTUNMasquerade(t *testing.T) {
	r, f := tunRig(t, 0, "")
	rules := filepath.Join(t.TempDir(), "masq.nft")
	os.WriteFile(rules, []byte(`table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "r1" counter masquerade
	}
}
`), 0o644)
	cf, err := os.OpenFile(f.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(cf, "\n[ruleset]\nfile = %q\n", rules)
	cf.Close()
	t.Logf("reload: %s", ctl(t, f, "reload"))
	r.B.MustRun("ip", "route", "del", "default")

	t.Run("ping", func(t *testing.T) { checkPing(t, r.A, lab.AddrB) })
	t.Run("traceroute", func(t *testing.T) {
		out, err := run(t, r.A, 60*time.Second, "traceroute", "-n", "-q1", "-w1", "-N1", lab.AddrB)
		if err != nil || !strings.Contains(out, " "+tunFerry+" ") || !strings.Contains(out, " "+lab.AddrB+" ") {
			t.Errorf("traceroute: want R's kernel, ferry's %s, then B: %v\n%s", tunFerry, err, out)
		}
		t.Logf("traceroute:\n%s", out)
	})
	iperfServer(t, r)
	t.Run("iperf3", func(t *testing.T) {
		checkTCP(t, r, false)
		checkTCP(t, r, true)
		checkUDP(t, r)
	})
	nat := ctl(t, f, "show", "nat")
	if !strings.Contains(nat, "192.0.2.2:") || !strings.Contains(nat, "-> "+lab.AddrR1+":") {
		t.Errorf("show nat: want A's flows mapped to %s:\n%s", lab.AddrR1, nat)
	}
	t.Logf("show nat:\n%s", nat)
	stopFerry(t, f)
}
