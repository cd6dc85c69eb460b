package conntrack

import (
	"sync"
	"sync/atomic"
)

// Conn is one tracked connection. Entries live in slabs the table
// allocates as it fills and never frees, so a *Conn stays valid memory for
// the table's life; once the entry expires or is dropped the slot may carry
// another flow. A caller keeps a *Conn only while handling the packet that
// Track returned it for, and reads Mark and NAT from Result, not from the
// entry.
//
// Fields a caller may set, on its unconfirmed scratch Conn only (between
// Track returning New and Confirm): Reply (NAT rewrites it to the tuple
// replies will carry after translation), Mark and NAT. After Confirm they
// are fixed, except Mark, which Table.SetMark changes.
type Conn struct {
	// Table-owned, not copied by Confirm. mu guards connData of a
	// confirmed entry; next, live and gen are guarded by the lock of the
	// shard that owns the slot (gen also by mu, so either lock reads it).
	mu       sync.Mutex
	deadline atomic.Int64 // unix-ish ns from the caller's clock; read without mu by Expire
	next     [2]uint32    // hash chain links of the Orig and Reply tuples
	gen      uint32       // bumped when the slot is freed
	self     uint32       // slot address: local<<shardBits | shard, fixed at slab creation

	connData
}

// connData is the part of an entry Confirm copies from the scratch Conn.
type connData struct {
	Orig  Tuple
	Reply Tuple
	// Mark is the connection mark (nft `ct mark`), 0 until set.
	Mark uint32
	// NAT is reserved for the NAT package (issue 10): an opaque handle,
	// e.g. an index into its own binding table, set on the scratch Conn
	// before Confirm together with the rewritten Reply tuple. conntrack
	// never interprets it; Track copies it into every Result. 0 = none.
	NAT uint32

	pkts    [2]uint32 // packets per direction, modulo 2^32
	state   uint8     // TCP: tcpState; others: unused
	status  uint8     // stSeenReply, stAssured
	pending bool      // an unconfirmed scratch Conn filled by Track
	// live is table-owned like next and gen (guarded by the owner
	// shard's lock); it sits here only to use a padding byte.
	live bool
	tcp  tcpConn
}

const (
	stSeenReply = 1 << iota
	stAssured
)

// tcpSide is what one endpoint has shown of its sequence space, as Linux's
// ip_ct_tcp_state: the highest seq+len it sent (end), the right edge of
// the window the other side offered it (maxend), and the largest window
// it offered (maxwin).
type tcpSide struct {
	end, maxend, maxwin uint32
	scale               uint8
	flags               uint8
}

const (
	sideWScale      = 1 << iota // sent the window scale option
	sideLiberal                 // windows not checked (picked up mid-stream)
	sideCloseInit               // sent the first FIN
	sideDataUnacked             // has data the other side has not acknowledged
)

// tcpConn is the TCP part of an entry: the two sides and what is needed to
// spot retransmissions and re-synchronise on a SYN/ACK to an ignored SYN.
// UDP reuses lastSeq to remember when its stream timeout starts.
type tcpConn struct {
	seen       [2]tcpSide
	lastSeq    uint32
	lastEnd    uint32
	lastWin    uint16
	lastDir    uint8
	lastIndex  uint8
	lastWScale uint8
	lastFlags  uint8
	retrans    uint8
}

// tuple is the entry's tuple for direction d.
func (c *Conn) tuple(d Dir) *Tuple {
	if d == Reply {
		return &c.Reply
	}
	return &c.Orig
}
