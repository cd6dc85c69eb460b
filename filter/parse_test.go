package filter

import (
	"strings"
	"testing"
)

// Good input: each rule line is parsed, compiled and listed; the listing
// line is what nft's canonical form of it is here.
func TestParseRules(t *testing.T) {
	tests := []struct{ in, want string }{
		{`ct state established,related accept`, `ct state established,related accept`},
		{`ct state { new, established } accept`, `ct state == { new, established } accept`},
		{`iifname "r0" ip saddr @trusted tcp dport { 22, 80, 443 } ct state new counter accept`,
			`iifname "r0" ip saddr @trusted tcp dport { 22, 80, 443 } ct state new counter packets 0 bytes 0 accept`},
		{`iifname eth* drop`, `iifname "eth*" drop`},
		{`meta iifname "r0" oifname != "r1" drop`, `iifname "r0" oifname != "r1" drop`},
		{`iif "r0" oif { "r1", "r2" } accept`, `iif "r0" oif { "r1", "r2" } accept`},
		{`ip saddr 192.0.2.1/24 drop`, `ip saddr 192.0.2.0/24 drop`},
		{`ip saddr != 192.0.2.1-192.0.2.9 ip daddr { 198.51.100.0/24, 203.0.113.7 } drop`,
			`ip saddr != 192.0.2.1-192.0.2.9 ip daddr { 198.51.100.0/24, 203.0.113.7 } drop`},
		{`ip6 saddr 2001:db8::/32 ip6 daddr != 2001:db8::1 drop`, `ip6 saddr 2001:db8::/32 ip6 daddr != 2001:db8::1 drop`},
		{`ip protocol { tcp, 132 } accept`, `ip protocol { tcp, sctp } accept`},
		{`ip6 nexthdr ipv6-icmp accept`, `ip6 nexthdr icmpv6 accept`},
		{`meta l4proto 17 udp sport 53 accept`, `meta l4proto udp udp sport 53 accept`},
		{`l4proto != tcp accept`, `meta l4proto != tcp accept`},
		{`meta nfproto ipv6 accept`, `meta nfproto ipv6 accept`},
		{`tcp sport 1024-65535 tcp dport 1000 - 2000 accept`, `tcp sport 1024-65535 tcp dport 1000-2000 accept`},
		{`th dport { 53, 5353 } accept`, `th dport { 53, 5353 } accept`},
		{`udp dport >= 1024 accept`, `udp dport 1024-65535 accept`},
		{`udp dport <= 1023 accept`, `udp dport 0-1023 accept`},
		{`icmp type echo-request icmp code 0 accept`, `icmp type echo-request icmp code net-unreachable accept`},
		{`icmp type { echo-reply, destination-unreachable, time-exceeded } accept`, `icmp type { echo-reply, destination-unreachable, time-exceeded } accept`},
		{`icmp type echo-reply-destination-unreachable accept`, `icmp type echo-reply-destination-unreachable accept`},
		{`icmpv6 type { nd-neighbor-solicit, 136 } accept`, `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept`},
		{`tcp flags syn drop`, `tcp flags syn drop`},
		{`tcp flags != fin,rst drop`, `tcp flags != fin,rst drop`},
		{`tcp flags == syn|ack drop`, `tcp flags == syn|ack drop`},
		{`tcp flags & (syn|ack) == syn drop`, `tcp flags & (syn | ack) == syn drop`},
		{`tcp flags & (fin | syn | rst | ack) != syn drop`, `tcp flags & (fin | syn | rst | ack) != syn drop`},
		{`tcp flags syn / syn,ack drop`, `tcp flags & (syn | ack) == syn drop`},
		{`tcp flags syn/syn,ack,rst drop`, `tcp flags & (syn | rst | ack) == syn drop`},
		{`tcp flags { syn, syn|ack } accept`, `tcp flags == { syn, syn|ack } accept`},
		{`ct mark 0x10 meta mark != 7 accept`, `ct mark 0x00000010 meta mark != 0x00000007 accept`},
		{`mark & 0xff == 1 accept`, `meta mark & 0x000000ff == 0x00000001 accept`},
		{`meta length > 1000 ip length 20-576 accept`, `meta length 1001-4294967295 ip length 20-576 accept`},
		{`ip dscp { cs1, ef, 10 } accept`, `ip dscp { cs1, ef, af11 } accept`},
		{`ip6 dscp != cs0 accept`, `ip6 dscp != cs0 accept`},
		{`counter packets 12 bytes 3400`, `counter packets 0 bytes 0`},
		{`limit rate 10/second accept`, `limit rate 10/second accept`},
		{`limit rate over 5 / minute burst 10 packets drop`, `limit rate over 5/minute burst 10 packets drop`},
		{`log`, `log`},
		{`log prefix "in: " level info`, `log prefix "in: " level info`},
		{`meta mark set 0x2a ct mark set 7`, `meta mark set 0x0000002a ct mark set 0x00000007`},
		{`mark set 1`, `meta mark set 0x00000001`},
		{`reject`, `reject`},
		{`reject with icmp type host-unreachable`, `reject with icmp type host-unreachable`},
		{`reject with icmp admin-prohibited`, `reject with icmp type admin-prohibited`},
		{`reject with icmpx type port-unreachable`, `reject with icmpx type port-unreachable`},
		{`meta l4proto tcp reject with tcp reset`, `meta l4proto tcp reject with tcp reset`},
		{`tcp dport 22 reject with tcp reset`, `tcp dport 22 reject with tcp reset`},
		{`jump sub`, `jump sub`},
		{`goto sub`, `goto sub`},
		{`return`, `return`},
		{`continue`, `continue`},
		{`tcp dport 22 counter meta mark set 1 accept # trailing comment`, `tcp dport 22 counter packets 0 bytes 0 meta mark set 0x00000001 accept`},
	}
	for _, tc := range tests {
		src := "table inet filter {\n\tset trusted { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }\n" +
			"\tchain sub { accept }\n\tchain fwd {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\t" + tc.in + "\n\t}\n}\n"
		p, err := Load("t.nft", src, testEnv)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		l := p.Listing()
		want := "\t\ttype filter hook forward priority filter; policy accept;\n\t\t" + tc.want + "\n\t}"
		if !strings.Contains(l, want) {
			t.Errorf("%s: listing does not contain %q:\n%s", tc.in, tc.want, l)
		}
	}
}

func TestParseStructure(t *testing.T) {
	src := `#!/usr/sbin/nft -f
flush ruleset

# a comment line
table ip t1 {
	set s4 {
		type ipv4_addr
		flags interval,constant
		auto-merge
		elements = { 192.0.2.0/25,
			192.0.2.200-192.0.2.210,
			198.51.100.7 }
	}
	set ports { type inet_service; elements = { 22, 80 } }
	chain in { type filter hook input priority filter - 10; policy drop; }
	chain pre { type filter hook prerouting priority raw
		policy accept
		comment "pre"
	}
	chain out { type filter hook output priority mangle+5; policy accept; }
	chain post { type filter hook postrouting priority -300; policy accept; }
	chain user {
		tcp dport \
			@ports accept
	}
}
table t2 { chain c { type filter hook forward priority security; policy accept; } }
table ip6 t3 { chain c { type filter hook forward priority srcnat + 1; policy accept; } }
`
	rs, err := Parse("s.nft", src)
	if err != nil {
		t.Fatal(err)
	}
	if !rs.Flush || len(rs.Tables) != 3 {
		t.Fatalf("flush %v, %d tables", rs.Flush, len(rs.Tables))
	}
	t1 := rs.Tables[0]
	if t1.Family != FamilyIP || t1.Name != "t1" || len(t1.Sets) != 2 || len(t1.Chains) != 5 {
		t.Fatalf("t1 %+v", t1)
	}
	s := t1.Sets[0]
	if s.Type != SetIPv4 || !s.Interval || !s.Constant || len(s.Elems) != 3 {
		t.Fatalf("set %+v", s)
	}
	prios := []int{-10, -300, -145, -300}
	hooks := []Hook{HookInput, HookPrerouting, HookOutput, HookPostrouting}
	for i, c := range t1.Chains[:4] {
		if c.Base.Priority != prios[i] || c.Base.Hook != hooks[i] {
			t.Errorf("chain %s: priority %d hook %v", c.Name, c.Base.Priority, c.Base.Hook)
		}
	}
	if t1.Chains[0].Base.Policy != VDrop || t1.Chains[1].Base.Policy != VAccept {
		t.Errorf("policies")
	}
	if u := t1.Chains[4]; u.Base != nil || len(u.Rules) != 1 || u.Rules[0].Exprs[0].Match.Set != "ports" {
		t.Errorf("user chain %+v", u)
	}
	if rs.Tables[1].Family != FamilyIP || rs.Tables[1].Chains[0].Base.Priority != 50 {
		t.Errorf("t2 %+v", rs.Tables[1])
	}
	if rs.Tables[2].Family != FamilyIP6 || rs.Tables[2].Chains[0].Base.Priority != 101 {
		t.Errorf("t3")
	}
	if _, err := Compile(rs, testEnv); err != nil {
		t.Fatal(err)
	}
}

// Bad input: the exact position and message.
func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"table inet t {\n chain c {\n  tcp dport 22 acept\n }\n}", `b.nft:3:16: unknown expression "acept"`},
		{"table inet t {\n chain c {\n  tcp dport 70000 accept\n }\n}", `b.nft:3:13: tcp dport: bad value "70000" (a number up to 65535)`},
		{"table inet t {\n chain c {\n  icmp type echo-requets accept\n }\n}", `b.nft:3:13: icmp type: unknown value "echo-requets"`},
		{"table inet t {\n chain c {\n  ip saddr 2001:db8::1 accept\n }\n}", `b.nft:3:12: ip saddr needs an IPv4 address, got 2001:db8::1`},
		{"table inet t {\n chain c {\n  ip6 saddr 192.0.2.0/24 accept\n }\n}", `b.nft:3:13: ip6 saddr needs an IPv6 prefix, got 192.0.2.0/24`},
		{"table inet t {\n chain c {\n  ip saddr 192.0.2.9-192.0.2.1 accept\n }\n}", `b.nft:3:12: ip saddr: range 192.0.2.9-192.0.2.1 is empty`},
		{"table inet t {\n chain c {\n  accept counter\n }\n}", `b.nft:3:10: "counter" after the verdict accept: the verdict ends the rule`},
		{"table inet t {\n chain c {\n  ip frobnicate 1\n }\n}", `b.nft:3:6: unsupported match ip frobnicate`},
		{"table inet t {\n chain c {\n  tcp dport { 22, 80 accept\n }\n}", `b.nft:3:22: expected ',' or '}', got "accept"`},
		{"table inet t {\n chain c {\n  tcp dport { } accept\n }\n}", `b.nft:3:13: tcp dport: empty set`},
		{"table inet t {\n chain c {\n  log prefix \"x\n }\n}", `b.nft:3:14: unterminated string`},
		{"table inet t {\n chain c {\n  limit rate 10/fortnight\n }\n}", `b.nft:3:14: bad rate unit "fortnight" (second, minute, hour, day; byte rates are not supported)`},
		{"table inet t {\n chain c {\n  reject with icmp type bogus\n }\n}", `b.nft:3:25: unsupported reject type icmp "bogus"`},
		{"table inet t {\n chain c { type filter hook sideways priority 0; }\n}", `b.nft:2:29: unknown hook "sideways" (prerouting, input, forward, output, postrouting)`},
		{"table inet t {\n chain c { type filter hook input priority urgent; }\n}", `b.nft:2:44: unknown priority "urgent" (a number or raw, mangle, dstnat, filter, security, srcnat)`},
		{"table inet t {\n chain c { type route hook input priority 0; }\n}", `b.nft:2:17: chain type route is not supported`},
		{"table ip t {\n chain c { type nat hook prerouting priority dstnat; dnat to 2001:db8::1; }\n}", `b.nft:2:62: "2001:db8::1" is not an IPv4 address (only IPv4 is translated)`},
		{"table ip t {\n chain c { type nat hook prerouting priority dstnat; dnat to 192.0.2.1:0; }\n}", `b.nft:2:62: bad port range "0"`},
		{"table ip t {\n chain c { type nat hook postrouting priority srcnat; masquerade to 192.0.2.1; }\n}", `b.nft:2:69: masquerade takes only ports (to :1024-65535), not "192.0.2.1"`},
		{"table ip t {\n chain c { type nat hook postrouting priority srcnat; snat; }\n}", `b.nft:2:59: snat needs ` + "`to ADDRESS[:PORT]`"},
		{"table inet t {\n chain c { policy drop; }\n}", `b.nft:2:12: chain c: policy needs a base chain (type ... hook ...)`},
		{"table inet t {\n chain c { type filter hook input priority 0; policy reject; }\n}", `b.nft:2:54: chain c: policy must be accept or drop, got "reject"`},
		{"table inet t {\n chain c { }\n chain c { }\n}", `b.nft:3:8: chain c: name already used at 2:8`},
		{"table bridge t { }", `b.nft:1:7: table family bridge is not supported (ip, ip6, inet)`},
		{"table inet t { }\ntable inet t { }", `b.nft:2:1: table inet t already defined at 1:1`},
		{"table inet t { }\nflush ruleset", `b.nft:2:1: flush ruleset must come before the tables`},
		{"chain c { }", `b.nft:1:1: expected ` + "`table` or `flush ruleset`" + `, got "chain"`},
		{"table inet t {\n set s { type ether_addr; }\n}", `b.nft:2:15: set s: unsupported type "ether_addr" (ipv4_addr, ipv6_addr, inet_service, inet_proto, mark)`},
		{"table inet t {\n set s { elements = { 1 } }\n}", `b.nft:2:10: set s: type must come before elements`},
		{"table inet t {\n set s { flags timeout; type ipv4_addr }\n}", `b.nft:2:16: set s: flag "timeout" is not supported (interval, constant)`},
		{"table inet t {\n set s { flags interval }\n}", `b.nft:2:2: set s has no type`},
		{"table inet t {\n chain c {\n  iifname \"e*th\" accept\n }\n}", `b.nft:3:11: iifname: "e*th": a wildcard is only allowed at the end, with iifname and oifname`},
		{"table inet t {\n chain c {\n  tcp flags syn / ack drop\n }\n}", `b.nft:3:13: tcp flags: value syn has bits outside the mask`},
		{"table inet t {\n chain c {\n  meta length < 0 drop\n }\n}", `b.nft:3:17: meta length < 0 never matches`},
		{"table inet t {\n chain c {\n  ip saddr > 192.0.2.1 drop\n }\n}", `b.nft:3:12: ip saddr: '>' needs a number`},
		{"table inet t {\n chain c {\n  tcp dport $x drop\n }\n}", `b.nft:3:13: unexpected character '$'`},
		{"table inet t {\n chain c {\n  tcp dport 22 accept", `b.nft:3:22: chain c: missing '}'`},
	}
	for _, tc := range tests {
		_, err := Parse("b.nft", tc.in)
		if err == nil {
			t.Errorf("%q: no error, want %s", tc.in, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, err, tc.want)
		}
	}
}

// Bad input found by Compile: names, protocols, loops, sizes.
func TestCompileErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"table inet t {\n chain c {\n  ip saddr @foo accept\n }\n}", `c.nft:3:12: unknown set @foo`},
		{"table inet t {\n set p { type inet_service; elements = { 22 } }\n chain c {\n  ip saddr @p accept\n }\n}", `c.nft:4:12: set @p has type inet_service but ip saddr needs ipv4_addr`},
		{"table inet t {\n chain c {\n  ip protocol icmp tcp dport 22 accept\n }\n}", `c.nft:3:20: tcp dport needs protocol tcp but rule matches icmp`},
		{"table inet t {\n chain c {\n  udp dport 53 tcp sport 1 accept\n }\n}", `c.nft:3:16: tcp sport needs protocol tcp but rule matches udp`},
		{"table inet t {\n chain c {\n  icmp type echo-request th dport 1 accept\n }\n}", `c.nft:3:26: th dport needs protocol tcp, udp, dccp, sctp or udplite but rule matches icmp`},
		{"table inet t {\n chain c {\n  tcp dport 1 meta l4proto udp accept\n }\n}", `c.nft:3:15: meta l4proto udp contradicts tcp dport, which needs protocol tcp`},
		{"table inet t {\n chain c {\n  ip saddr 192.0.2.1 ip6 daddr ::1 accept\n }\n}", `c.nft:3:22: ip6 daddr needs IPv6 but the rule matches IPv4 (ip saddr)`},
		{"table ip t {\n chain c {\n  ip6 saddr ::1 accept\n }\n}", `c.nft:3:3: ip6 saddr never matches in a table of family ip`},
		{"table inet t {\n chain c {\n  iifname \"r9\" accept\n }\n}", `c.nft:3:11: unknown interface "r9"`},
		{"table inet t {\n chain c {\n  oifname \"wg*\" accept\n }\n}", `c.nft:3:11: oifname "wg*" matches no interface`},
		{"table inet t {\n chain c {\n  jump nowhere\n }\n}", `c.nft:3:3: jump to unknown chain nowhere`},
		{"table inet t {\n chain b { type filter hook input priority 0; }\n chain c {\n  goto b\n }\n}", `c.nft:4:3: goto to base chain b: only regular chains can be jumped to`},
		{"table inet t {\n chain a { jump b }\n chain b { tcp dport 1 goto a }\n}", `c.nft:3:24: jump loop: a -> b -> a`},
		{"table inet t {\n chain a { jump a }\n}", `c.nft:2:12: jump loop: a -> a`},
		{"table inet t {\n chain c {\n  udp dport 53 reject with tcp reset\n }\n}", `c.nft:3:16: reject with tcp reset needs a rule that matches tcp only`},
		{"table ip t {\n chain c { type nat hook postrouting priority srcnat; dnat to 192.0.2.1; }\n}", `c.nft:2:55: dnat at hook postrouting: it belongs at prerouting (or output)`},
		{"table ip t {\n chain c { type filter hook forward priority 0; masquerade; }\n}", `c.nft:2:49: masquerade in a filter chain: put it in a ` + "`type nat`" + ` chain`},
		{"table ip t {\n chain c { type nat hook prerouting priority dstnat; tcp dport 1 reject; }\n}", `c.nft:2:66: reject in a nat chain: filter in a ` + "`type filter`" + ` chain`},
		{"table ip6 t {\n chain c {\n  reject with icmp type host-unreachable\n }\n}", `c.nft:3:3: reject with icmp on IPv6: use icmpv6 or icmpx`},
		{"table inet t {\n set s { type ipv4_addr; elements = { 192.0.2.0/24 } }\n}", `c.nft:2:39: set s: element 192.0.2.0/24 is a prefix or range: the set needs ` + "`flags interval`"},
	}
	for _, tc := range tests {
		_, err := Load("c.nft", tc.in, testEnv)
		if err == nil {
			t.Errorf("%q: no error, want %s", tc.in, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestJumpDepth(t *testing.T) {
	var b strings.Builder
	b.WriteString("table inet t {\n")
	for i := 0; i <= MaxJumpDepth; i++ {
		b.WriteString(" chain c" + itoa(i) + " { jump c" + itoa(i+1) + " }\n")
	}
	b.WriteString(" chain c" + itoa(MaxJumpDepth+1) + " { accept }\n}\n")
	_, err := Load("d.nft", b.String(), testEnv)
	if err == nil || !strings.Contains(err.Error(), "jump depth exceeds 16") {
		t.Fatalf("got %v", err)
	}
}

func TestSetTooLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString("table inet t {\n set trusted { type ipv4_addr; elements = { ")
	for i := 0; i <= MaxSetElements; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("10." + itoa(i>>16) + "." + itoa(i>>8&255) + "." + itoa(i&255))
	}
	b.WriteString(" } }\n}\n")
	_, err := Parse("big.nft", b.String())
	if err == nil || !strings.HasSuffix(err.Error(), "set trusted: 100001 elements exceeds 100000") || !strings.HasPrefix(err.Error(), "big.nft:2:") {
		t.Fatalf("got %v", err)
	}
}
