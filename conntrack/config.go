package conntrack

import "time"

// DefaultCapacity is the number of entries a table holds when the config
// leaves it unset (Linux sizes nf_conntrack_max from memory; 262,144 is
// what a 16 GiB machine gets).
const DefaultCapacity = 262144

// Timeouts are how long an entry lives after its last packet, by protocol
// and state. A zero field takes Linux's default (nf_conntrack sysctls).
type Timeouts struct {
	TCPSynSent     time.Duration // 120s (also SYN_SENT2, as in Linux)
	TCPSynRecv     time.Duration // 60s
	TCPEstablished time.Duration // 5 days
	TCPFinWait     time.Duration // 120s
	TCPCloseWait   time.Duration // 60s
	TCPLastAck     time.Duration // 30s
	TCPTimeWait    time.Duration // 120s
	TCPClose       time.Duration // 10s
	// TCPMaxRetrans caps the timeout once a segment was retransmitted
	// tcpMaxRetrans times; TCPUnacknowledged caps it while data is in
	// flight unacknowledged, and for a picked-up flow not yet answered.
	TCPMaxRetrans     time.Duration // 300s
	TCPUnacknowledged time.Duration // 300s
	UDP               time.Duration // 30s: unreplied, or replied within 2s of the first packet
	UDPStream         time.Duration // 120s: replied and still active 2s after the first packet (ASSURED)
	ICMP              time.Duration // 30s (ICMPv6 too)
	Generic           time.Duration // 600s: every other protocol
}

// DefaultTimeouts are Linux's nf_conntrack defaults.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		TCPSynSent:        120 * time.Second,
		TCPSynRecv:        60 * time.Second,
		TCPEstablished:    5 * 24 * time.Hour,
		TCPFinWait:        120 * time.Second,
		TCPCloseWait:      60 * time.Second,
		TCPLastAck:        30 * time.Second,
		TCPTimeWait:       120 * time.Second,
		TCPClose:          10 * time.Second,
		TCPMaxRetrans:     300 * time.Second,
		TCPUnacknowledged: 300 * time.Second,
		UDP:               30 * time.Second,
		UDPStream:         120 * time.Second,
		ICMP:              30 * time.Second,
		Generic:           600 * time.Second,
	}
}

// Config sizes and tunes a Table. Start from DefaultConfig: the zero value
// of TCPLoose is off, which is not Linux's default.
type Config struct {
	// Capacity is the most entries the table holds (0: DefaultCapacity).
	// Memory grows with use up to it, never past it.
	Capacity int
	Timeouts Timeouts
	// TCPLoose picks up a TCP flow in mid-stream from a non-SYN segment
	// (Linux nf_conntrack_tcp_loose=1), with liberal window checks for it,
	// since its window scale was never seen.
	TCPLoose bool
	// TCPBeLiberal accepts out-of-window TCP segments instead of marking
	// them invalid (nf_conntrack_tcp_be_liberal); RSTs still change state
	// only when in window.
	TCPBeLiberal bool
	// OnRemove, when set, is called with an entry's NAT handle (when not
	// zero) once the entry is freed: expired, dropped early, flushed or
	// replaced. It runs without the table's locks, on whichever goroutine
	// freed the entry (a worker's packet path too), so it must be quick
	// and must not call back into the table.
	OnRemove func(nat uint32)
}

// DefaultConfig is Linux's behaviour: default capacity and timeouts, loose
// pickup on, strict windows.
func DefaultConfig() Config {
	return Config{Capacity: DefaultCapacity, Timeouts: DefaultTimeouts(), TCPLoose: true}
}

// fill replaces zero fields with defaults.
func (t *Timeouts) fill() {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, d *time.Duration }{
		{&t.TCPSynSent, &d.TCPSynSent}, {&t.TCPSynRecv, &d.TCPSynRecv},
		{&t.TCPEstablished, &d.TCPEstablished}, {&t.TCPFinWait, &d.TCPFinWait},
		{&t.TCPCloseWait, &d.TCPCloseWait}, {&t.TCPLastAck, &d.TCPLastAck},
		{&t.TCPTimeWait, &d.TCPTimeWait}, {&t.TCPClose, &d.TCPClose},
		{&t.TCPMaxRetrans, &d.TCPMaxRetrans}, {&t.TCPUnacknowledged, &d.TCPUnacknowledged},
		{&t.UDP, &d.UDP}, {&t.UDPStream, &d.UDPStream}, {&t.ICMP, &d.ICMP}, {&t.Generic, &d.Generic},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
}
