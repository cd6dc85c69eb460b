package conntrack

// TCP header flag bits, as in the header's 13th byte.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
	TCPEce = 0x40
	TCPCwr = 0x80
)

// Meta is what the dataplane parsed from one packet. The caller owns it
// (one per worker, reused packet after packet) and fills every field the
// packet's protocol uses; Reset clears it between packets.
type Meta struct {
	// Tuple is the packet's own tuple as on the wire. For ICMP it carries
	// the identifier, type and code (Tuple.SetICMP).
	Tuple Tuple
	// Inner is the tuple of the packet an ICMP error quotes, as quoted
	// (from the host that sent it); HasInner says it was parsed. An ICMP
	// error without it is invalid.
	Inner    Tuple
	HasInner bool

	// TCP: sequence and acknowledgement numbers, the window as in the
	// header (unscaled), the flags byte, and the window scale option when
	// the segment carries one (SYN and SYN/ACK only matter).
	Seq, Ack  uint32
	Window    uint16
	Flags     uint8
	WScale    uint8
	HasWScale bool

	// Payload is the L4 payload length in bytes (TCP: after the options).
	Payload uint32

	// Truncated marks a packet whose L4 header (or ICMP quote) was cut
	// short: it has no tuple, and Linux gives it no conntrack entry, which
	// nft matches as ct state invalid.
	Truncated bool
}

// Reset clears m for the next packet.
func (m *Meta) Reset() { *m = Meta{} }

// CtState is what nft's `ct state` matches. The values are nft's own bits,
// so a set such as `established,related` is one mask and a test is
// state&mask != 0.
type CtState uint8

const (
	StateInvalid     CtState = 1
	StateEstablished CtState = 2
	StateRelated     CtState = 4
	StateNew         CtState = 8
	StateUntracked   CtState = 64
)

func (s CtState) String() string {
	switch s {
	case StateInvalid:
		return "invalid"
	case StateEstablished:
		return "established"
	case StateRelated:
		return "related"
	case StateNew:
		return "new"
	case StateUntracked:
		return "untracked"
	}
	return "?"
}

// Dir is the direction of a packet within its connection: Original is the
// direction of the packet that created the entry.
type Dir uint8

const (
	Original Dir = 0
	Reply    Dir = 1
)

func (d Dir) String() string {
	if d == Reply {
		return "reply"
	}
	return "original"
}

// Result is what Track found for one packet. Conn is nil for Invalid and
// Untracked packets; for a New packet not yet in the table it is the
// caller's scratch Conn, to be passed to Confirm once the packet is
// accepted. Mark and NAT are copies of the entry's fields taken under its
// lock, so a caller need not read the shared entry.
type Result struct {
	Conn  *Conn
	Dir   Dir
	State CtState
	Mark  uint32
	NAT   uint32
	// Other is the connection's tuple in the other direction, copied
	// under the entry's lock when NAT is set: NAT translates a packet of
	// direction Dir into the inverse of Other.
	Other Tuple
}
