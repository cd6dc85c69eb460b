package filter

import "testing"

func TestSmoke(t *testing.T) {
	src := `flush ruleset
table inet filter { set trusted { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 198.51.100.7 } } chain forward { type filter hook forward priority 0; policy drop; ct state established,related accept; iifname "r0" ip saddr @trusted tcp dport { 22, 80, 443 } ct state new counter accept
tcp flags & (syn|ack) == syn drop
tcp flags syn / syn,ack drop
icmp type echo-request limit rate 10/second burst 5 packets accept
meta l4proto tcp meta length < 100 log prefix "x" level info reject with tcp reset
} }`
	p, err := Load("t.nft", src, Env{Interfaces: map[string]int{"r0": 0, "r1": 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(p.Listing())
}
