// Package conntrack is ferry's connection tracking: the table the filter
// asks for `ct state` and NAT hangs its translations on. It is pure logic
// (no I/O, no dataplane import) and is tested without root.
//
// # Use
//
// A worker owns a Meta and a scratch Conn and, for every packet, fills the
// Meta from the headers and calls Track. Established, related, invalid and
// untracked packets come back with the shared entry (or none). The first
// packet of a flow comes back as StateNew with Conn == the scratch, which
// is in no table yet: the filter may still drop it (nothing to undo) and
// NAT may rewrite scratch.Reply and set scratch.NAT; Confirm then inserts
// it, indexed by Orig and by Reply as they are then, and returns the
// table's entry. A scratch stays the caller's until it is confirmed or
// forgotten, so a worker that runs the conntrack stage over a whole batch
// before confirming keeps one scratch per packet slot of the batch (176
// bytes each). Track and Confirm allocate nothing once the table's slabs
// exist (TestZeroAllocs). Time is the caller's: now is nanoseconds on any
// monotonic clock, so tests inject it.
//
// # Table
//
// The table is split into up to 256 shards by tuple hash (a seeded
// 128-bit multiply-fold). A shard owns a mutex, an array of hash chain
// heads and an equal share of Capacity as slots in slabs of 1024 entries,
// allocated as the shard fills and kept for the table's life. An entry's
// Orig tuple picks the shard that owns its slot; its Reply tuple is
// chained in whatever shard it hashes to, so either direction's packet,
// on any worker, finds the one entry with one shard lock. Chains link
// 32-bit slot references held in the entries themselves, and the entries
// hold no pointers, so the garbage collector never scans them. A packet
// takes its tuple's shard lock for the chain walk and the entry's own
// mutex for the update (TCP state, timeout, counters); insert and remove
// take the two shards of the entry in index order. No lock is global;
// with 256 shards two workers rarely meet on one.
//
// Expiry: every entry carries a deadline. A lookup that finds an expired
// entry frees it and treats the packet as new; Expire(now, budget)
// visits a bounded number of slots from where it last stopped and frees
// what expired, so there is never a sweep of the whole table. Capacity:
// when the shard a new flow hashes to is at its share, Confirm scans up to
// 64 of its slots for an entry that has seen no reply and evicts it (an
// early drop); when there is none it returns ErrFull and the packet
// should be dropped. Memory therefore never exceeds Capacity entries, and
// a flood of new flows cannot push out a flow that was answered.
//
// # TCP
//
// States and transitions are Linux's nf_conntrack_proto_tcp table (s =
// segment in the original direction, r = in the reply direction; "ign"
// passes the segment with the entry's state and changes nothing, "inv"
// is invalid):
//
//	state        SYN        SYN/ACK       FIN          ACK            RST
//	NONE         SYN_SENT   inv           inv          ESTABLISHED*   inv
//	SYN_SENT     s:again    s:inv         inv          s:inv          CLOSE
//	             r:SYN_SENT2 r:SYN_RECV                r:ign
//	SYN_RECV     s:ign r:inv ign          FIN_WAIT     s:ESTABLISHED  CLOSE
//	                                                   r:SYN_RECV
//	ESTABLISHED  s:ign r:inv ign          FIN_WAIT     ESTABLISHED    CLOSE
//	FIN_WAIT     s:ign r:inv ign          LAST_ACK     CLOSE_WAIT     CLOSE
//	CLOSE_WAIT   s:ign r:inv ign          LAST_ACK     CLOSE_WAIT     CLOSE
//	LAST_ACK     s:ign r:inv ign          LAST_ACK     TIME_WAIT      CLOSE
//	TIME_WAIT    reopen**   ign           TIME_WAIT    TIME_WAIT      CLOSE
//	CLOSE        s:reopen** ign           CLOSE        CLOSE          CLOSE
//	             r:inv
//	SYN_SENT2    SYN_SENT2  SYN_RECV      inv          s:inv r:ign    CLOSE
//
//	*  original direction only, and only with TCPLoose (mid-stream pickup;
//	   the windows of a picked-up flow are not checked, as in Linux)
//	** a SYN after a FIN or a RST frees the entry and starts a new flow;
//	   otherwise it is ignored (RFC 1122 4.2.2.13)
//
// A packet with no SYN/FIN/RST/ACK, or an impossible flag combination
// (SYN+FIN, SYN+RST, FIN without ACK, ...), is invalid. Every segment
// that would change state must also fall within the windows, as Linux's
// tcp_in_window and OpenBSD pf's pf_tcp_track_full check them: its
// sequence number at most the right edge the receiver offered, its end no
// older than one window, its ACK no further than what the other side
// sent and no older than max(window, 66000). Windows are scaled when both
// SYNs carried the option (scale capped at 14). An out-of-window segment
// is invalid and changes nothing; a RST is checked by its sequence number
// (a RST with seq 0 answering a SYN is accepted). TCPBeLiberal accepts
// out-of-window segments. An entry is ASSURED once the handshake completes
// (SYN_RECV -> ESTABLISHED with a reply seen), or a picked-up flow is
// answered. A RST before any reply ends the entry at once. A SYN/ACK
// that answers a SYN the tracker ignored re-synchronises the entry on it.
//
// Timeouts (Linux's defaults; Config.Timeouts overrides): SYN_SENT 120 s,
// SYN_RECV 60 s, ESTABLISHED 5 days, FIN_WAIT 120 s, CLOSE_WAIT 60 s,
// LAST_ACK 30 s, TIME_WAIT 120 s, CLOSE 10 s, SYN_SENT2 120 s. At most
// 300 s while data is unacknowledged, after 3 identical retransmissions,
// and for a picked-up flow never answered. A retransmitted SYN does not
// extend a SYN_SENT entry.
//
// # UDP, ICMP, others
//
// UDP (and UDP-Lite): 30 s until answered; once answered, 30 s for an
// exchange within 2 s of its first packet (a DNS query) and 120 s plus
// ASSURED for one still active after that (a stream). ICMP and ICMPv6
// queries (echo, timestamp, information, address mask, node information)
// are keyed by identifier, the request's and the reply's type mapped so
// both meet one entry; 30 s. An answer to no query, and any other ICMP
// type that is not an error, is invalid; ICMPv6 neighbour discovery and
// MLD are untracked. ICMP errors (unreachable, time exceeded, parameter
// problem, source quench, redirect; ICMPv6 1-4) carry the quoted packet's
// tuple in Meta.Inner: the error is related to that flow (found through
// a NAT too, by the inverse of the quote, as Linux does) and changes
// nothing in it; quoting no tracked flow makes it invalid. Other
// protocols: generic tracking on addresses (and ports if the caller sets
// them), 600 s. A packet whose L4 header is truncated (Meta.Truncated) is
// invalid, as Linux gives it no entry.
//
// States for the filter: StateNew for packets in the original direction
// until a reply was seen, StateEstablished after, and always for replies;
// StateRelated for ICMP errors; StateInvalid; StateUntracked. The values
// are nft's ct state bits, so `ct state established,related` is one mask.
//
// # For NAT (issue 10)
//
// Conn.NAT is an opaque 32-bit handle for the NAT package (an index into
// its own session or binding table), set on the scratch Conn before
// Confirm together with the translated Reply tuple; Track copies it, and
// the mark, into every Result so a worker never reads the shared entry.
// Table.Lookup tells NAT whether a candidate reply tuple is taken, and
// Confirm refuses a reply tuple another flow owns (ErrReplyTaken). When
// two workers confirm the same flow, the loser gets the winner's entry;
// its packet is counted there, and counts as the flow's first reply when
// it came from the other end (a simultaneous open or hole punch).
//
// # Where this differs from Linux
//
//   - SACK blocks are not read: a segment's ACK field bounds the ACK
//     checks, which is more liberal than Linux when a SACK edge lies
//     beyond it. The maximum-ACK check that Linux applies to RSTs in CLOSE
//     is not kept (pf does not keep it either).
//   - Early drop evicts only entries that have seen no reply; Linux also
//     evicts answered entries that are not yet ASSURED (a finished DNS
//     exchange). The issue asks that established flows are never dropped.
//   - Capacity is split evenly among shards, so a shard can be full (and
//     drop early, or refuse) while the table as a whole holds slightly
//     fewer than Capacity entries.
//   - Counters are packets per direction (modulo 2^32); bytes are not
//     counted, to keep an entry under 200 bytes.
//   - No helpers (FTP, SIP), no expectations, no zones, no events.
//
// # Figures
//
// On the shared two-core VM (load average 3-7 from other builds, so
// absolute figures move by 1.5x between runs), two runs of three:
//
//	go test -run '^$' -bench 'New|Lookup' -cpu 1 -count 3 -benchtime 1000000x ./conntrack
//	go test -run '^$' -bench Memory -cpu 1 -benchtime 1x ./conntrack
//
//	BenchmarkNew/steady                 592-692 ns   1.45-1.69 M new flows/s
//	BenchmarkNew/grow                   632-1,330 ns 0.75-1.58 M/s (also allocates the slabs)
//	BenchmarkLookupEstablished/udp-1M   634-929 ns   (random order among 1 M entries:
//	                                                  cache and TLB misses dominate)
//	BenchmarkLookupEstablished/tcp-ack-1k 84-112 ns  (state machine and windows, in cache)
//	BenchmarkMemory                     193 bytes/entry at 1,000,000 entries
//
// An entry is 176 bytes (two 38-byte tuples, the TCP windows of both
// sides, mutex, deadline, chain links); chain heads add 8 bytes an entry
// and partly used slabs the rest. New flows cost three to four cache
// misses (two chain heads, the slot, a chain neighbour), lookups two.
package conntrack
