package filter

import (
	"fmt"
	"strings"
	"testing"
)

// nonMatching builds n `udp dport N drop` rules on distinct ports that
// the benchmark packet (udp dport 9) never hits, then an accept.
func nonMatching(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "udp dport %d drop\n", 10000+i)
	}
	b.WriteString("accept")
	return chain("drop", b.String())
}

// mixed100 is 100 rules of the kinds a real ruleset has.
func mixed100() string {
	var b strings.Builder
	b.WriteString("ct state established,related accept\nct state invalid drop\n")
	kinds := []string{
		"tcp dport %d ip saddr 192.0.2.0/24 accept",
		`iifname "r0" udp dport { %d, 5353 } counter accept`,
		"ip daddr 203.0.113.%d tcp dport 443 accept",
		"tcp flags syn / syn,ack tcp dport %d limit rate 100/second accept",
		"icmp type echo-request ip saddr 198.51.100.%d accept",
		"ip saddr 192.0.2.%d meta mark set 1",
		"th dport %d-%d drop",
		"ip6 saddr 2001:db8::%d drop",
	}
	for i := 0; len(strings.Split(b.String(), "\n")) <= 99; i++ {
		k := kinds[i%len(kinds)]
		args := []any{i + 1000}
		if strings.Count(k, "%d") == 2 {
			args = append(args, i+1010)
		}
		if strings.Contains(k, "203.0.113") || strings.Contains(k, "198.51.100") || strings.Contains(k, "192.0.2.%d") {
			args = []any{i % 250}
		}
		fmt.Fprintf(&b, k+"\n", args...)
	}
	b.WriteString("accept")
	return chain("drop", b.String())
}

// BenchmarkEval: one packet that matches none of the port rules and is
// accepted by the last rule; ns/op is per packet.
func BenchmarkEval(b *testing.B) {
	cases := []struct {
		name string
		src  string
	}{
		{"udp-rules-10", nonMatching(10)},
		{"udp-rules-100", nonMatching(100)},
		{"udp-rules-1000", nonMatching(1000)},
		{"udp-rules-10000", nonMatching(10000)},
		{"mixed-100", mixed100()},
	}
	for _, c := range cases {
		p := mustLoad(b, c.src)
		for _, mode := range []string{"indexed", "linear"} {
			if mode == "linear" && !strings.HasSuffix(c.name, "-10") && !strings.HasSuffix(c.name, "-1000") && c.name != "mixed-100" {
				continue // the linear walk of 10,000 rules only shows what the index saves
			}
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				p.linear = mode == "linear"
				ctr := p.NewCounters()
				pk := pkt4(b, "203.0.113.77", "198.51.100.5", ProtoUDP, 40000, 9)
				pk.CtState = CtNew
				var res Result
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					q := pk
					res = p.Eval(HookForward, &q, ctr, int64(i))
				}
				if res.Action != ActAccept {
					b.Fatalf("got %v", res.Action)
				}
			})
			p.linear = false
		}
	}
}
