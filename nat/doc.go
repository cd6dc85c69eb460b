// Package nat is ferry's IPv4 address and port translation (NAT44: SNAT,
// masquerade, and the lookups port forwards and inbound sessions need) as
// pure logic: no I/O, no dataplane import, tested without root. The
// dataplane's hooks decide when to translate and call it; conntrack holds
// the per-flow state (each flow's Conn.NAT is a mapping id from here).
//
// # Mappings
//
// A mapping binds an inside endpoint (protocol, address, port or ICMP query
// identifier) to one external endpoint of a Pool, for every remote it talks
// to (endpoint-independent mapping, RFC 4787 REQ-1). Map returns it,
// creating it on first use; Inbound finds the mapping an outside packet is
// for and applies the pool's filtering; both take a reference for the
// session (conntrack entry) the caller creates, and Release drops it when
// conntrack frees the entry (conntrack.Config.OnRemove). A mapping with no
// references lingers Config.Linger (30 s) so an inside endpoint that opens
// a new session soon keeps its external endpoint, then Expire frees it; a
// full table reclaims the oldest lingering mapping of the shard it needs
// before it refuses.
//
// A port forward (or static binding) is a mapping the configuration holds
// a reference to: AddStatic creates it, endpoint-independent both ways, and
// Release of its id retires it. Dynamic mappings never take its external
// endpoint, and the inside server's own outbound connections from that
// port leave from it when masqueraded to its address.
//
// Mappings are keyed by (protocol, inside endpoint, pool Lo): one inside
// endpoint leaving through two masquerading ports gets a mapping on each.
// The external index is (protocol, external endpoint) and holds at most one
// mapping, so two inside endpoints never share an external endpoint (no
// port overloading, REQ-3; no port overlapping either, RFC 7857 section 4
// allows it but EIM plus EIF would make it ambiguous).
//
// Port choice, for a new mapping: the inside port itself on up to 16 pool
// addresses, starting with one picked by a hash of the inside address (so a
// host's mappings usually share one external address); else 64 random
// ports (RFC 6056 algorithm 1, bounded) of the same class — 1-1023 or
// 1024-65535, intersected with the pool's ports when that leaves any — and
// the same parity (REQ-4), half on the preferred address; else a linear
// scan of up to 4096 consecutive endpoints from a random start. Then
// ErrPoolExhausted: certain for pools of up to 4096 endpoints, "nearly
// full" beyond. ICMP identifiers have no class or parity (0-65535, or the
// pool's range).
//
// Filtering (Pool.Filtering, fixed for a mapping's life): a mapping keeps
// up to MaxRemotes (8) remote endpoints it sent to, most recent kept,
// deduplicated by address under AddressDependent. Inbound lets in any
// remote (EndpointIndependent), remotes whose address is among them
// (AddressDependent) or whose address and port are (AddressPortDependent).
// A remote pushed out by eight newer ones is refused a new inbound session
// until the inside endpoint sends to it again; packets of existing
// sessions go by conntrack, not by Inbound, and are unaffected.
//
// # Table
//
// Up to 256 shards, each with a mutex, two arrays of chain heads (inside
// keys, external keys; two heads a mapping) and its slots in slabs of 1024
// entries allocated as it fills and kept for the table's life. A mapping's
// inside key picks the shard owning its slot and its mutable state
// (references, remotes, linger list links); its external key is chained in
// whatever shard that hashes to. Slots hold no pointers (the GC never scans
// them) and link by 32-bit slot references. Map of an existing mapping
// takes one shard lock; Inbound takes the external key's shard lock and,
// when the owner is another shard, that one after it (never both at once);
// creating or freeing a mapping takes the two shards in index order. The
// one shared word is an atomic count of mappings, touched only when a
// mapping is created or freed, which makes MaxMappings exact. Map (hit),
// Inbound and Release allocate nothing, nor does Map creating a mapping
// once its slab exists.
//
// Expiry: each shard lists its lingering mappings in Release order, so
// Expire looks only at list heads, frees at most budget mappings a call,
// visits each shard at most once a call and never sweeps the table.
//
// A mapping id (never 0) is the slot reference plus 7 bits of the slot's
// generation: Release ignores ids of freed mappings (after Flush) but for
// a 1 in 128 chance of a reused slot.
//
// # Packet rewriting
//
// SetSource and SetDest change an address and port (ICMP query
// identifier) and update the IPv4 header checksum and the TCP, UDP (a zero
// UDP checksum stays zero) or ICMP checksum incrementally (RFC 1624), or
// for offloaded checksums (partial) the pseudo-header sum the field then
// holds. TranslateICMPError (errors coming back in) and
// TranslateICMPErrorDest (errors from inside about packets that came in
// through a port forward) rewrite the outer address and the quoted packet's
// address and port, with every checksum kept correct. All of them are
// bounds-checked (FuzzRewrite) and allocate nothing.
//
// # RFC compliance
//
// "dataplane" marks what the dataplane hooks (or conntrack) must do with
// what this package provides; "—" means not applicable here.
//
// RFC 4787 (UDP; the table applies the same rules to TCP and ICMP):
//
//	REQ-1  endpoint-independent mapping          done      TestEndpointIndependentMapping
//	REQ-2  paired address pooling (RECOMMENDED)   partial   TestPortPreservation: a hash of the inside address picks the
//	                                                        first address, but port preservation may move a mapping to another
//	REQ-3  no port overloading; port class kept   done      TestNoOverloadingClassKept, TestConcurrent
//	REQ-4  port parity preserved (RECOMMENDED)    done      TestNoOverloadingClassKept (random ports; the last-resort scan does not)
//	REQ-5  UDP mapping timer >= 2 min             partial   lifetime = sessions (conntrack: 30 s unanswered, 120 s answered) +
//	                                                        Linger 30 s; set Linger >= 90 s for strict compliance (dataplane/config)
//	REQ-6  outbound refresh; inbound MAY          done      TestReleaseLingerExpire (Map and Inbound sessions both hold it)
//	REQ-7  inside/outside address conflicts       dataplane
//	REQ-8  filtering EIF or ADF, configurable     done      TestFiltering (all three modes, per pool)
//	REQ-9  hairpinning, external source kept      dataplane (Inbound on the external endpoint, then SetSource)
//	REQ-10 no UDP ALGs                            done      (there are none)
//	REQ-11 deterministic behaviour                done      (no mode changes under load; a full table refuses, it does not degrade)
//	REQ-12 ICMP never ends a mapping              done      (only Release/Expire/Flush free); forwarding errors: TestTranslateICMPError
//	REQ-13 fragmentation needed / fragmenting     dataplane
//	REQ-14 out-of-order fragments                 dataplane (reassembly); SetSource with l4 = nil: TestNonFirstFragment
//
// RFC 5382 (TCP):
//
//	REQ-1  endpoint-independent mapping           done      TestEndpointIndependentMapping
//	REQ-2  all valid TCP sequences, simultaneous open  dataplane/conntrack (EIM + Inbound let a hole punch through)
//	REQ-3  EIF or ADF filtering, configurable     done      TestFiltering
//	REQ-4  no response to unsolicited SYN for 6 s dataplane
//	REQ-5  idle timeouts >= 2 h 4 min / 4 min     dataplane/conntrack (a mapping lives as long as its sessions)
//	REQ-6  ALGs off by default                    done      (there are none)
//	REQ-7  no port overloading                    done      TestNoOverloadingClassKept
//	REQ-8  hairpinning                            dataplane
//	REQ-9  translate ICMP destination unreachable done      TestTranslateICMPError (tcp-full, tcp-8)
//	REQ-10 ICMP never ends mapping or connection  done      (as RFC 4787 REQ-12)
//
// RFC 5508 (ICMP):
//
//	REQ-1  ICMP queries translated, identifier
//	       mapping external-host independent      done      TestEndpointIndependentMapping (ICMP), TestSetSourceDest/icmp-echo
//	REQ-2  ICMP query session timer >= 60 s       dataplane/conntrack (30 s) + Linger 30 s
//	REQ-3  bad ICMP / embedded IP checksum: drop;
//	       options in the quote; don't check the
//	       quoted L4 checksum                     partial   quoted IP options are skipped (IHL); TranslateICMPError neither
//	                                                        validates nor repairs checksums: validating is the dataplane's
//	REQ-4  errors from outside: revert the quote,
//	       outer destination = quoted source      done      TestTranslateICMPError (finding the mapping: dataplane)
//	REQ-5  errors from inside: revert the quote,
//	       outer source translated                done      TestTranslateICMPErrorDest
//	REQ-6  errors don't refresh/delete sessions   dataplane (do not call Map/Inbound for errors)
//	REQ-7  hairpinned queries and errors          dataplane
//	REQ-8  ICMP when no mapping can be made       dataplane (Map returns ErrTableFull / ErrPoolExhausted)
//	REQ-9..11 ICMP generation policy, non-query-
//	       error ICMP                             dataplane (SetSource leaves non-query ICMP's payload alone)
//
// RFC 7857 (updates):
//
//	TCP session tracking, RST, transitory timeout dataplane/conntrack
//	port overlapping                              — (never: one inside endpoint per external endpoint)
//	address pooling paired                        partial (as RFC 4787 REQ-2)
//	EIM / EIF protocol independence               done (the same rules for TCP, UDP, ICMP; filtering per pool, not per protocol)
//	EIF mapping refresh                           done (an Inbound session holds the mapping like an outbound one)
//	outbound refresh and error packets            dataplane (no Map for outbound ICMP errors and RSTs)
//	port parity                                   done (random ports)
//	port randomization (RFC 6056)                 done, after port preservation — which reveals the inside port
//	                                              when it is free: a deliberate trade for transparency
//	IP identification (RFC 6864)                  dataplane
//	ICMP query mappings freed with last session   done (after Linger) TestReleaseLingerExpire
//	hairpinning for ICMP                          dataplane
//
// # What the dataplane does with it (dataplane/nat.go)
//
// Translations are decided for a connection's first packet and kept in
// its conntrack entry (the Reply tuple, and the mapping id + 1 in
// Conn.NAT, released through conntrack's OnRemove); every later packet,
// either way, is rewritten from the entry. Against the rows marked
// "dataplane" above:
//
//	RFC 4787 REQ-5     mappings linger 90 s after their last session: with conntrack's
//	                   30 s for an unanswered UDP flow, 2 minutes
//	RFC 4787 REQ-9     hairpin to a port forward: done (also masqueraded, so the server
//	                   answers through ferry; e2e TestFerrydNAT/port_forward).
//	                   Hairpin to a dynamic mapping's endpoint: the destination is
//	                   translated, the source is not: TCP between two inside hosts
//	                   through a mapping does not work yet
//	RFC 4787 REQ-13    "fragmentation needed" sent before translation (e2e pmtu check)
//	RFC 4787 REQ-14    later fragments follow their first (per worker memo); fragments
//	                   arriving before their first are not held: invalid, untranslated
//	RFC 5382 REQ-4     not done: an unsolicited SYN to ferry's address is answered
//	                   with a RST at once (ferry listens on no port)
//	RFC 5508 REQ-1..3  errors translated both ways (outer and quoted headers, every
//	                   checksum); a quote too short is dropped (nat_bad_icmp); bad
//	                   checksums in the quote are not checked
//	RFC 5508 REQ-6     errors never create, refresh or delete a session (conntrack
//	                   treats them as related)
//	RFC 5508 REQ-8     no ICMP sent when no mapping can be made: dropped and counted
//	                   (nat_pool_exhausted, nat_table_full)
//	IP ID (RFC 6864)   not rewritten
//
// # Figures
//
// On the shared two-core VM, whose load average went from 3 to 8 (other
// work) during these runs, so figures move by 2-3x between runs; the
// better figure of each range is from the quieter runs:
//
//	go test -run '^$' -bench 'MapNew|MapHit|Inbound|Rewrite' -cpu 1 -count 3 -benchtime 1000000x ./nat
//	go test -run '^$' -bench 'MapHit|Inbound' -cpu 1 -count 4 -benchtime 2000000x ./nat
//	go test -run '^$' -bench Memory -cpu 1 -benchtime 1x ./nat
//
//	BenchmarkMapNew/grow    0.71-1.9 us  0.52-1.41 M new mappings/s (also allocates slabs: 109 B/op)
//	BenchmarkMapNew/steady  0.53-1.5 us  0.68-1.90 M new mappings/s (slots reused, 0 allocs)
//	BenchmarkMapHit         83-127 ns    (random order among 65,536; 300-650 ns in the
//	                                     first command, right after MapNew's 2 M-entry tables)
//	BenchmarkInbound        64-300 ns    (address-port-dependent, 8 remotes to compare)
//	BenchmarkRewrite        13-28 ns     (SetSource on TCP)
//	BenchmarkMemory         126 bytes/mapping at 1,000,000 mappings (target 256)
//
// A slot is 104 bytes (two endpoints, domain, 8 remotes, links, refs, time);
// chain heads add 16 bytes a mapping and partly used slabs the rest. A new
// mapping costs three to four cache misses (two chain walks, the slot).
//
// # Not done
//
// IPv6 (NPTv6, NAT64), hairpinning and ICMP policy (dataplane), ALGs,
// port-block allocation and deterministic NAT (RFC 7422) for logging-free
// CGN, per-protocol Linger.
package nat
