// Package filter is ferry's packet filter as pure logic: a parser for a
// subset of the nftables ruleset language (the text `nft list ruleset`
// prints, so users paste it), a compiler that checks it and indexes each
// chain, and an evaluator the dataplane calls at its five hooks. It does
// no I/O; connection tracking lives in package conntrack and reaches the
// filter only as Packet.CtState and Packet.CtMark.
//
// # Use
//
//	prog, err := filter.Load("ferry.nft", text, filter.Env{Interfaces: ports})
//	ctr := prog.NewCounters()                     // one per worker
//	res := prog.Eval(filter.HookForward, &pkt, ctr, now)
//	fmt.Print(prog.Listing(allWorkersCounters...)) // ferryctl show ruleset
//
// A Program is immutable (but for its named sets' elements, swapped
// atomically by AddElements and DelElements): a reload compiles a new
// one and stores it with an atomic pointer; a failed compile leaves the
// running one in place. Counters belong to the Program they came from.
//
// # Semantics (as netfilter)
//
// Base chains at a hook run in priority order (ties: file order). In a
// chain, rules run in order; a rule's expressions run left to right and
// the first failing match ends it. accept ends the base chain and moves
// on to the next base chain at the hook; drop and reject are final. A
// base chain that ends without a verdict, or returns, applies its
// policy. jump pushes the caller (at most 16 deep), goto does not, return
// and the end of a regular chain go back to the last jump. Tables of
// family ip see IPv4 packets, ip6 IPv6, inet both. A match whose header
// the packet lacks never matches, negated or not: `ip saddr != X` does
// not match IPv6, `tcp dport != 22` does not match UDP or a packet
// without its L4 header (Packet.HasPorts false). `meta mark set` changes
// Packet.Mark for later rules and is reported in Result.
//
// # Supported syntax
//
// Comments start with #, a backslash joins lines, ';' and newlines end
// statements; `flush ruleset` may open the file.
//
//	What                 Syntax                                                   Example
//	table                table [ip|ip6|inet] NAME { sets and chains }             table inet filter { ... }
//	named set            set NAME { type T; [flags interval[,constant]]; elements = { ... } }
//	                     T: ipv4_addr, ipv6_addr, inet_service, inet_proto, mark  set trusted { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 198.51.100.7 } }
//	base chain           type filter hook H priority P; policy accept|drop;       type filter hook forward priority filter + 10; policy drop;
//	                     H: prerouting input forward output postrouting
//	                     P: number, or raw -300, mangle -150, dstnat -100, filter 0, security 50, srcnat 100, with +/- N
//	regular chain        chain NAME { rules }                                     chain ssh { ip saddr @trusted accept }
//	interfaces           iifname, oifname ("eth*" wildcard), iif, oif             iifname { "r0", "wg*" }
//	addresses            ip saddr|daddr, ip6 saddr|daddr: address, prefix,       ip daddr != 198.51.100.1-198.51.100.9
//	                     range a-b, { set }, @named
//	protocols            ip protocol, ip6 nexthdr, meta l4proto, meta nfproto    meta l4proto { tcp, udp }
//	ports                tcp|udp|th sport|dport: N, a-b, { set }, @named        tcp dport { 22, 80, 8000-8100 }
//	ICMP                 icmp type|code, icmpv6 type|code (nft names or numbers) icmp type { echo-request, time-exceeded }
//	TCP flags            tcp flags syn (any of), == syn|ack (exactly),           tcp flags syn / syn,ack
//	                     & (syn|ack) == syn, syn / syn,ack (masked)
//	conntrack            ct state new,established,related,invalid,untracked;     ct state established,related accept
//	                     ct mark
//	meta                 meta mark (mark), meta length (length), ip length       meta length > 1200
//	DSCP                 ip dscp, ip6 dscp: number or cs0-cs7, af11-af43, ef, le, va  ip dscp ef
//	compare              implicit ==, !=, <, >, <=, >= (integers),               ct mark & 0xff == 0x1
//	                     & MASK ==|!= V (integers)
//	statements           counter [packets N bytes N]; limit rate [over] N/second|minute|hour|day [burst N packets];
//	                     log [prefix "s"] [level L]; meta mark set N; ct mark set N
//	verdicts             accept, drop, reject [with icmp|icmpv6|icmpx type T | with tcp reset],
//	                     jump C, goto C, return, continue
//
// Not supported (a clear error, never silently ignored): other families
// and chain types (nat comes with the NAT work), maps, verdict maps,
// concatenations, set timeouts, byte-rate limits, variables ($x),
// `add`/`insert` commands. Counts after `counter packets N bytes M` are
// accepted and not restored. A bare `reject` answers ICMP port
// unreachable (Result.Reject; the dataplane picks ICMPv4 or ICMPv6).
//
// # Checks at load time
//
// Errors name file:line:column and what is wrong: unknown chains, sets
// ("unknown set @foo") and interfaces (Env.Interfaces), jump loops ("jump
// loop: a -> b -> a") and jumps deeper than 16, jumps to base chains,
// contradictory protocols ("tcp dport needs protocol tcp but rule matches
// icmp"), families (ip6 saddr in a table ip), `reject with tcp reset` on
// a rule that is not tcp-only, prefixes in a set without `flags
// interval`, sets over 100,000 elements.
//
// # Cost
//
// Each chain is indexed by L4 protocol and destination port: per
// protocol, the rules that can match without ports, and per named port
// the rules that can match it (the rule's own dports, or none). Only
// matches before a rule's first statement narrow it, so a skipped rule
// would not have counted or limited anything, and lists keep rule order,
// so first-match order is exact. BenchmarkEval (one non-matching UDP
// packet, 2 shared cores, noisy):
//
//	rules (udp dport N drop + accept)   indexed    linear walk
//	10                                  50 ns      128 ns
//	100                                 41 ns
//	1,000                               34 ns      20,400 ns
//	10,000                              42 ns
//	100 mixed                           259 ns     1,080 ns
//
// Sets are merged, sorted intervals (IPv4, ports, protocols, marks as
// uint32; IPv6 as 128-bit keys) searched by binary search: membership of
// a union of prefixes is what a longest-prefix lookup answers for a set.
// An IPv4 set of more than 256 intervals is also split back into
// prefixes in a bart.Lite table, which is faster there: with 100,000
// random prefixes a lookup took 185-197 ns by binary search and 43-97 ns
// through bart; IPv6 measured 175 ns by binary search and no better with
// bart (BenchmarkSetLookup; the machine is noisy). A change rebuilds the
// set's lookup copy and swaps it in: 20 to 100 ms at 100,000 elements.
//
// limit is a token bucket kept as one atomic word (GCRA), shared by all
// workers without a lock; log calls Env.Log, rate-limited per statement.
// Eval allocates nothing (TestEvalAllocs).
package filter
