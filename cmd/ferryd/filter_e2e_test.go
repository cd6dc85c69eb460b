package main_test

// End-to-end checks of the stateful filter (issue 9) with real clients:
// ferry as a gateway protecting B's network from A's side and itself,
// written as an nft user would write it. socat and curl-like exchanges for
// allowed and dropped TCP, hping3 for the UDP reject, traceroute for
// related ICMP errors, nmap for the input chain, counters against the
// packets sent, a named set changed live, and a reload under iperf3.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-router/ferry/internal/lab"
)

const gatewayRules = `# ferry as a gateway: A's side (r0) may open a few services on B's side (r1)
table inet filter {
	set blocked {
		type ipv4_addr
		flags interval
	}

	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		icmp type echo-request accept
		udp dport 33434-33534 reject
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
		icmp type echo-request counter
		ct state established,related accept
		ct state invalid counter drop
		ip saddr @blocked counter drop
		iifname "r0" tcp dport { 22, 80 } counter accept
		iifname "r0" tcp dport 5201 accept
		iifname "r0" icmp type echo-request accept
		iifname "r0" udp dport 33434-33534 accept
		iifname "r0" tcp dport 8080 reject with tcp reset
		iifname "r0" udp dport 7 reject
		# end of forward
	}
}
`

func TestFerrydFirewall(t *testing.T) {
	needTools(t, "socat", "curl", "nc", "hping3", "nmap", "iperf3", "traceroute")
	rules := filepath.Join(t.TempDir(), "ferry.nft")
	text := gatewayRules
	if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// A small table, so that the flood below fills it.
	r, f := ferryRig(t, lab.FerryConfig{Extra: "[ruleset]\nfile = \"" + rules + "\"\n\n[conntrack]\nmax = 2048\n"}, nil)
	defer stopFerry(t, f)
	r.A.MustRun("ip", "route", "replace", "default", "via", lab.AddrR0)
	r.B.MustRun("ip", "route", "replace", "default", "via", lab.AddrR1)

	// B serves HTTP on 80 and a line on 22 (allowed), 81 (not allowed)
	// and 8080 (reset); A serves a line on 80, for B to try.
	// (A script, because socat's address syntax takes ':' and ',' itself.)
	httpd := filepath.Join(t.TempDir(), "httpd.sh")
	os.WriteFile(httpd, []byte("read l; printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 9\\r\\n\\r\\nhello-80\\n'\n"), 0o755)
	r.B.MustStart("socat", "TCP-LISTEN:80,bind="+lab.AddrB+",reuseaddr,fork", "EXEC:sh "+httpd)
	for _, port := range []string{"22", "81", "8080"} {
		r.B.MustStart("socat", "TCP-LISTEN:"+port+",bind="+lab.AddrB+",reuseaddr,fork", "SYSTEM:echo hello-"+port)
	}
	r.A.MustStart("socat", "TCP-LISTEN:80,bind="+lab.AddrA+",reuseaddr,fork", "SYSTEM:echo hello-from-a")
	time.Sleep(300 * time.Millisecond)
	connect := func(port string) (string, error, time.Duration) {
		start := time.Now()
		out, err := run(t, r.A, 10*time.Second, "socat", "-T", "3", "-", "TCP:"+lab.AddrB+":"+port+",connect-timeout=3")
		return out, err, time.Since(start)
	}

	t.Run("allowed tcp", func(t *testing.T) {
		out, err := run(t, r.A, 10*time.Second, "curl", "-sS", "--max-time", "5", "http://"+lab.AddrB+"/")
		if err != nil || !strings.Contains(out, "hello-80") {
			t.Fatalf("curl port 80: %v %q", err, out)
		}
		out, err = run(t, r.A, 10*time.Second, "nc", "-w", "3", lab.AddrB, "22")
		if err != nil || !strings.Contains(out, "hello-22") {
			t.Fatalf("nc port 22: %v %q", err, out)
		}
		ct := ctl(t, f, "show", "conntrack", "proto", "tcp", "port", "80")
		if !strings.Contains(ct, "dport=80") || !strings.Contains(ct, "[ASSURED]") {
			t.Errorf("show conntrack has no assured entry for port 80:\n%s", ct)
		}
		t.Logf("show conntrack proto tcp port 80:\n%s", ct)
	})

	t.Run("dropped tcp times out", func(t *testing.T) {
		before := dropCount(ctl(t, f, "show", "interfaces"), "filter_forward")
		out, err, took := connect("81")
		if err == nil || strings.Contains(out, "hello-81") {
			t.Fatalf("port 81 answered: %q", out)
		}
		if took < 2*time.Second {
			t.Errorf("port 81 failed after %v: a drop should time out, not refuse (%v)", took, err)
		}
		if n := dropCount(ctl(t, f, "show", "interfaces"), "filter_forward") - before; n < 1 {
			t.Errorf("filter_forward grew by %d", n)
		}
	})

	t.Run("new inbound dropped", func(t *testing.T) {
		out, err := run(t, r.B, 10*time.Second, "socat", "-T", "3", "-", "TCP:"+lab.AddrA+":80,connect-timeout=3")
		if err == nil || strings.Contains(out, "hello-from-a") {
			t.Errorf("B reached A's port 80: %v %q", err, out)
		}
	})

	t.Run("reject with tcp reset", func(t *testing.T) {
		out, err, took := connect("8080")
		if err == nil || !strings.Contains(out+err.Error(), "Connection refused") || took > 2*time.Second {
			t.Errorf("port 8080: want connection refused at once, got %v after %v: %s", err, took, out)
		}
	})

	t.Run("reject udp", func(t *testing.T) {
		out, _ := run(t, r.A, 10*time.Second, "hping3", "--udp", "-p", "7", "-c", "1", lab.AddrB)
		if !strings.Contains(out, "Port Unreachable") {
			t.Errorf("hping3 to udp 7 saw no port unreachable:\n%s", out)
		}
	})

	t.Run("traceroute through: related errors", func(t *testing.T) {
		out, err := run(t, r.A, 30*time.Second, "traceroute", "-n", "-q1", "-w1", lab.AddrB)
		if err != nil || !regexp.MustCompile(`(?m)^\s*1\s+`+regexp.QuoteMeta(lab.AddrR0)).MatchString(out) ||
			!regexp.MustCompile(`(?m)^\s*2\s+`+regexp.QuoteMeta(lab.AddrB)).MatchString(out) {
			t.Errorf("traceroute: %v\n%s", err, out)
		}
		t.Logf("traceroute:\n%s", out)
	})

	t.Run("input chain", func(t *testing.T) {
		checkPing(t, r.A, lab.AddrR0)
		out, err := run(t, r.A, 60*time.Second, "nmap", "-n", "-Pn", "-sS", "-p", "22,80", "--max-retries", "1", lab.AddrR0)
		if err != nil || !regexp.MustCompile(`22/tcp\s+filtered`).MatchString(out) {
			t.Errorf("nmap: want 22/tcp filtered (the input chain drops before ferry would reset): %v\n%s", err, out)
		}
		if n := dropCount(ctl(t, f, "show", "interfaces"), "filter_input"); n < 2 {
			t.Errorf("filter_input = %d", n)
		}
		t.Logf("nmap:\n%s", out)
	})

	t.Run("counters equal packets", func(t *testing.T) {
		ctl(t, f, "reset", "counters")
		out, err := run(t, r.A, 20*time.Second, "ping", "-c", "5", "-i", "0.1", "-W", "1", lab.AddrB)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		rs := ctl(t, f, "show", "ruleset")
		if !strings.Contains(rs, "icmp type echo-request counter packets 5 bytes 420") {
			t.Errorf("want the echo-request counter at 5 packets, 420 bytes:\n%s", rs)
		}
	})

	t.Run("named set live", func(t *testing.T) {
		ctl(t, f, "set", "add", "blocked", lab.AddrA+"/32")
		out, _ := run(t, r.A, 10*time.Second, "ping", "-c", "2", "-i", "0.2", "-W", "1", lab.AddrB)
		if !strings.Contains(out, "100% packet loss") {
			t.Errorf("ping with A blocked:\n%s", out)
		}
		if rs := ctl(t, f, "show", "ruleset"); !strings.Contains(rs, "elements = { "+lab.AddrA) {
			t.Errorf("set not listed:\n%s", rs)
		}
		ctl(t, f, "set", "del", "blocked", lab.AddrA+"/32")
		checkPing(t, r.A, lab.AddrB)
	})

	t.Run("reload under iperf3", func(t *testing.T) {
		iperfServer(t, r)
		type res struct {
			out string
			err error
		}
		done := make(chan res, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := r.A.Run(ctx, "iperf3", "-c", lab.AddrB, "-t", "6", "-i", "1", "-f", "m")
			done <- res{string(out), err}
		}()
		time.Sleep(2 * time.Second)
		// A ruleset with a syntax error: the reload fails with its line
		// and the running rules stay.
		bad := strings.Replace(text, "ct state invalid drop", "ct state invalid dorp", 1)
		os.WriteFile(rules, []byte(bad), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := f.Ctl(ctx, "reload")
		cancel()
		line := strings.Count(text[:strings.Index(text, "ct state invalid drop")], "\n") + 1
		if want := "ferry.nft:" + strconv.Itoa(line) + ":"; err == nil || !strings.Contains(string(out)+err.Error(), want) {
			t.Errorf("bad reload: want an error at %s, got %v %s", want, err, out)
		}
		// The real change: one more counter at the end of forward.
		os.WriteFile(rules, []byte(strings.Replace(text, "# end of forward", "counter", 1)), 0o644)
		t.Logf("reload: %s", ctl(t, f, "reload"))
		ct := ctl(t, f, "show", "conntrack", "port", "5201", "state", "ESTABLISHED")
		if !strings.Contains(ct, "dport=5201") {
			t.Errorf("iperf3 flow not in conntrack during the run:\n%s", ct)
		}
		got := <-done
		if got.err != nil {
			t.Fatalf("iperf3 across the reload: %v\n%s", got.err, got.out)
		}
		// Every interval after the reload still carried data.
		re := regexp.MustCompile(`(?m)^\[\s*\d+\]\s+(\d+)\.\d+-\d+\.\d+\s+sec\s+\S+\s+\S+\s+(\d+)\s+Mbits/sec`)
		for _, m := range re.FindAllStringSubmatch(got.out, -1) {
			if sec, _ := strconv.Atoi(m[1]); sec >= 2 && sec < 6 {
				if mb, _ := strconv.Atoi(m[2]); mb < 10 {
					t.Errorf("interval from %ss carried %s Mbit/s:\n%s", m[1], m[2], got.out)
				}
			}
		}
		t.Logf("iperf3 across the reload:\n%s", got.out)
		if rs := ctl(t, f, "show", "ruleset"); !regexp.MustCompile(`\n\t\tcounter packets \d+`).MatchString(rs) {
			t.Errorf("reloaded ruleset not in place:\n%s", rs)
		}
	})

	t.Run("flood fills the table and no further", func(t *testing.T) {
		// B sends to A in reverse: its data packets are replies. If the
		// flood evicted the iperf3 flow, they would arrive as new flows
		// from r1 and be dropped, and iperf3 would stall.
		done := make(chan string, 1)
		go func() {
			out, _ := run(t, r.A, 60*time.Second, "iperf3", "-c", lab.AddrB, "-R", "-t", "8", "-i", "1", "-f", "m")
			done <- out
		}()
		time.Sleep(1500 * time.Millisecond)
		// 30,000 new UDP flows (hping3 moves the source port every
		// packet) to traceroute's ports, which the chain accepts and B
		// never answers (its port unreachable errors are related, not
		// replies): unreplied entries, the kind early drop may evict.
		out, _ := run(t, r.A, 40*time.Second, "hping3", "--udp", "-p", "33434", "-i", "u100", "-c", "30000", lab.AddrB)
		t.Logf("hping3: %s", lastLine(out))
		ct := ctl(t, f, "show", "conntrack", "proto", "tcp")
		iperf := <-done
		m := regexp.MustCompile(`table (\d+) of (\d+) entries.*\n.*\n?# inserted (\d+), expired (\d+), early drops (\d+)`).FindStringSubmatch(ct)
		if m == nil {
			t.Fatalf("show conntrack:\n%s", ct)
		}
		entries, capacity, _ := atoi(m[1]), atoi(m[2]), atoi(m[3])
		if capacity != 2048 || entries > capacity || atoi(m[5]) == 0 {
			t.Errorf("after the flood: %d entries of %d, %s early drops:\n%s", entries, capacity, m[5], ct)
		}
		re := regexp.MustCompile(`(?m)^\[\s*\d+\]\s+(\d+)\.\d+-\d+\.\d+\s+sec\s+\S+\s+\S+\s+(\d+)\s+Mbits/sec`)
		rows := re.FindAllStringSubmatch(iperf, -1)
		if len(rows) < 8 {
			t.Fatalf("iperf3 -R during the flood:\n%s", iperf)
		}
		for _, row := range rows[:8] {
			if atoi(row[2]) < 10 {
				t.Errorf("iperf3 -R interval from %ss: %s Mbit/s during the flood:\n%s", row[1], row[2], iperf)
			}
		}
		t.Logf("conntrack after the flood:\n%s", ct[strings.Index(ct, "# "):])
		t.Logf("iperf3 -R during the flood:\n%s", iperf)
	})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
