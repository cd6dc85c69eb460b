package main_test

// End-to-end checks of NAT (issue 10) with real clients, host offloads
// on: A (inside, 192.0.2.2) is masqueraded behind ferry's 198.51.100.1 on
// B's side, and B reaches a port forward to A's web server. B takes the
// routes to A's network away, so that only translated packets can work,
// and B watches with tcpdump that A's address never reaches it.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

const natRules = `table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 198.51.100.1 tcp dport 8080 counter dnat to 192.0.2.2:80
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "r1" ip saddr 192.0.2.0/24 counter masquerade
	}
}
`

// addrB2 is B's second address, for the STUN server's RFC 5780 tests.
const addrB2 = "198.51.100.3"

func TestFerrydNAT(t *testing.T) {
	needTools(t, "socat", "curl", "hping3", "tcpdump", "iperf3", "traceroute", "tracepath", "turnserver", "turnutils_natdiscovery")
	rules := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(rules, []byte(natRules), 0o644); err != nil {
		t.Fatal(err)
	}
	// B's link has MTU 1300, for path MTU discovery through the NAT.
	r, f := ferryRig(t, lab.FerryConfig{MTU1: 1300, Extra: "[ruleset]\nfile = \"" + rules + "\"\n"}, func(r *lab.Rig) {
		if err := r.SetMTU(1300); err != nil {
			t.Fatal(err)
		}
	})
	defer stopFerry(t, f)
	// B knows nothing of A's network: only translated traffic can work.
	r.B.MustRun("ip", "route", "del", "default")
	r.B.MustRun("ip", "addr", "add", addrB2+"/24", "dev", "eth0")

	// Everything B sees from ferry's side must come from 198.51.100.1.
	td := r.B.MustStart("tcpdump", "-l", "-n", "-i", "eth0", "ip and not arp and src net 192.0.2.0/24")
	time.Sleep(time.Second)
	defer func() {
		td.Stop(syscall.SIGINT, 5*time.Second)
		if strings.Contains(td.Output(), " IP 192.0.2.") {
			t.Errorf("B saw untranslated inside addresses:\n%s", td.Output())
		}
	}()

	t.Run("ping", func(t *testing.T) { checkPing(t, r.A, lab.AddrB) })

	t.Run("iperf3", func(t *testing.T) {
		iperfServer(t, r)
		checkTCP(t, r, false)
		checkTCP(t, r, true)
		checkUDP(t, r)
	})

	t.Run("traceroute beyond ferry", func(t *testing.T) { checkTraceroute(t, r) })

	t.Run("udp to a closed port", func(t *testing.T) {
		out, _ := run(t, r.A, 10*time.Second, "hping3", "--udp", "-p", "7", "-c", "1", lab.AddrB)
		if !strings.Contains(out, "Port Unreachable from ip="+lab.AddrB) {
			t.Errorf("want ICMP port unreachable from B, translated back to A:\n%s", out)
		}
	})

	t.Run("port forward", func(t *testing.T) {
		httpd := filepath.Join(t.TempDir(), "httpd.sh")
		os.WriteFile(httpd, []byte("read l; printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 13\\r\\n\\r\\nhello-from-a\\n'\n"), 0o755)
		r.A.MustStart("socat", "TCP-LISTEN:80,bind="+lab.AddrA+",reuseaddr,fork", "EXEC:sh "+httpd)
		time.Sleep(300 * time.Millisecond)
		out, err := run(t, r.B, 15*time.Second, "curl", "-sS", "--max-time", "5", "http://"+lab.AddrR1+":8080/")
		if err != nil || !strings.Contains(out, "hello-from-a") {
			t.Errorf("curl from B to the forward: %v %q", err, out)
		}
		// Hairpin: A reaches its own forward through the public address.
		out, err = run(t, r.A, 15*time.Second, "curl", "-sS", "--max-time", "5", "http://"+lab.AddrR1+":8080/")
		if err != nil || !strings.Contains(out, "hello-from-a") {
			t.Errorf("hairpin curl from A: %v %q", err, out)
		}
		t.Logf("show nat sessions:\n%s", ctl(t, f, "show", "nat", "sessions"))
	})

	// ping -M do and tracepath: ferry's "frag needed" reaches A, and
	// tracepath's last hop (B's port unreachable, translated) too.
	t.Run("pmtu through the nat", func(t *testing.T) { checkPMTU(t, r) })

	t.Run("RFC 5780 behaviour discovery", func(t *testing.T) {
		r.B.MustStart("turnserver", "-n", "--stun-only", "--no-cli", "--no-tls", "--no-dtls",
			"-L", lab.AddrB, "-L", addrB2, "--log-file", "stdout", "--simple-log")
		time.Sleep(1500 * time.Millisecond)
		out, err := run(t, r.A, 60*time.Second, "turnutils_natdiscovery", "-m", "-f", lab.AddrB)
		t.Logf("turnutils_natdiscovery -m -f:\n%s", out)
		if err != nil {
			t.Fatalf("natdiscovery: %v", err)
		}
		if !regexp.MustCompile(`(?i)NAT with Endpoint Independent Mapping`).MatchString(out) {
			t.Errorf("want endpoint-independent mapping")
		}
		if !regexp.MustCompile(`(?i)NAT with Endpoint Independent Filtering`).MatchString(out) {
			t.Errorf("want endpoint-independent filtering (the default)")
		}
		t.Logf("show nat:\n%s", ctl(t, f, "show", "nat"))
	})

	t.Run("counters", func(t *testing.T) {
		rs := ctl(t, f, "show", "ruleset")
		if !regexp.MustCompile(`masquerade`).MatchString(rs) || !strings.Contains(rs, "dnat ip to 192.0.2.2:80") {
			t.Errorf("listing:\n%s", rs)
		}
		if in := ctl(t, f, "show", "interfaces"); dropCount(in, "nat_pool_exhausted")+dropCount(in, "nat_bad_icmp") != 0 {
			t.Errorf("NAT drops:\n%s", in)
		}
	})
}
