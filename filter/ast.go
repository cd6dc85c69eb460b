package filter

import "net/netip"

// The syntax tree the parser builds and Compile checks. It mirrors nft's
// structure (tables of sets and chains, chains of rules, rules of
// expressions) so that the NAT work adds chain types and statements
// without changing its shape: a `type nat` chain is a Chain with Type
// "nat", and snat/dnat/masquerade are further StmtKinds.

// Ruleset is a parsed file.
type Ruleset struct {
	Flush  bool // the text began with `flush ruleset`
	Tables []*Table
}

// Family is a table's address family.
type Family uint8

const (
	FamilyIP   Family = iota + 1 // IPv4 packets only
	FamilyIP6                    // IPv6 packets only
	FamilyInet                   // both
)

var familyNames = [...]string{FamilyIP: "ip", FamilyIP6: "ip6", FamilyInet: "inet"}

func (f Family) String() string { return familyNames[f] }

// Table holds sets and chains; names are scoped to the table.
type Table struct {
	Pos    Pos
	Family Family
	Name   string
	Sets   []*Set
	Chains []*Chain
}

// SetType is the element type of a named set.
type SetType uint8

const (
	SetIPv4    SetType = iota + 1 // ipv4_addr
	SetIPv6                       // ipv6_addr
	SetService                    // inet_service: ports
	SetProto                      // inet_proto
	SetMark                       // mark
)

var setTypeNames = [...]string{SetIPv4: "ipv4_addr", SetIPv6: "ipv6_addr", SetService: "inet_service", SetProto: "inet_proto", SetMark: "mark"}

// Set is a named set. Interval sets hold prefixes and ranges.
type Set struct {
	Pos      Pos
	Name     string
	Type     SetType
	TypePos  Pos
	Interval bool // flags interval
	Constant bool // flags constant: AddElements and DelElements refuse it
	Elems    []Value
}

// Hook is a netfilter hook: where in the packet path a base chain runs.
type Hook uint8

const (
	HookPrerouting Hook = iota
	HookInput
	HookForward
	HookOutput
	HookPostrouting
	NumHooks
)

var hookNames = [...]string{"prerouting", "input", "forward", "output", "postrouting"}

func (h Hook) String() string {
	if h < NumHooks {
		return hookNames[h]
	}
	return "hook?"
}

// Chain is a base chain (Base != nil: attached to a hook) or a regular
// chain reached only by jump and goto.
type Chain struct {
	Pos   Pos
	Name  string
	Base  *BaseChain
	Rules []*Rule
}

// BaseChain is the `type T hook H priority P; policy X;` line.
type BaseChain struct {
	Pos      Pos
	Type     string // "filter"; NAT adds "nat"
	Hook     Hook
	Priority int
	Policy   VerdictKind // VAccept or VDrop
}

// Rule is one line of a chain: expressions evaluated left to right, then
// the verdict (nil: continue with the next rule).
type Rule struct {
	Pos     Pos
	Exprs   []Expr
	Verdict *Verdict
}

// Expr is a match or a statement; exactly one is set.
type Expr struct {
	Match *Match
	Stmt  *Stmt
}

// Field is what a match reads from the packet.
type Field uint8

const (
	FIifname Field = iota + 1
	FOifname
	FIif
	FOif
	FIPSaddr
	FIPDaddr
	FIP6Saddr
	FIP6Daddr
	FIPProtocol
	FIP6Nexthdr
	FL4Proto
	FNfproto
	FTCPSport
	FTCPDport
	FUDPSport
	FUDPDport
	FTHSport
	FTHDport
	FICMPType
	FICMPCode
	FICMPv6Type
	FICMPv6Code
	FTCPFlags
	FCtState
	FCtMark
	FMark
	FMetaLength
	FIPLength
	FIPDscp
	FIP6Dscp
	numFields
)

// Form is how a match compares.
type Form uint8

const (
	// FormIn: the value (masked by Mask when non-zero) is one of Values
	// or in the named set. `==`, `!=`, `<`, `>`, ranges, sets.
	FormIn Form = iota
	// FormFlags: a flag field (ct state, tcp flags) written as a bare
	// list: matches when any listed bit is set; `!=` when none is.
	FormFlags
)

// Match is `field [op] value`. Neg inverts it (`!=`), except that a
// match whose header is absent (an ip saddr on IPv6, a port on a
// truncated packet) never matches, negated or not, as in nft.
type Match struct {
	Pos    Pos
	Field  Field
	Neg    bool
	Form   Form
	Mask   uint32  // FormIn on integer fields: compare value & Mask (0: no mask)
	Values []Value // literal values; empty when Set names a set
	Set    string  // named set (@name)
	SetPos Pos
	Anon   bool // Values were written as an anonymous set { ... }
}

// Value is one literal: an integer range (Lo == Hi for one value), an
// address prefix or range, or an interface name (a trailing * is a
// wildcard).
type Value struct {
	Pos      Pos
	Lo, Hi   uint32
	Prefix   netip.Prefix // a prefix or single address (full length)
	ALo, AHi netip.Addr   // an address range a-b, when Prefix is not valid
	Name     string
}

// StmtKind is a non-terminal statement.
type StmtKind uint8

const (
	StCounter StmtKind = iota + 1
	StLimit
	StLog
	StMetaMarkSet
	StCtMarkSet
)

// Stmt is a statement inside a rule.
type Stmt struct {
	Pos    Pos
	Kind   StmtKind
	Over   bool   // limit rate over
	Rate   uint64 // limit: packets per Unit
	Unit   string // second, minute, hour, day
	Burst  uint32 // limit: packets; 0 when not written (default 5)
	Prefix string // log
	Level  string // log; "" when not written
	Value  uint32 // mark set
}

// VerdictKind ends a rule's evaluation.
type VerdictKind uint8

const (
	VAccept VerdictKind = iota + 1
	VDrop
	VReject
	VJump
	VGoto
	VReturn
	VContinue
	VNAT // masquerade, snat, dnat (Verdict.NAT)
)

var verdictNames = [...]string{VAccept: "accept", VDrop: "drop", VReject: "reject", VJump: "jump", VGoto: "goto", VReturn: "return", VContinue: "continue", VNAT: "nat"}

func (v VerdictKind) String() string { return verdictNames[v] }

// RejectKind is how a rejected packet is answered. The ICMP kinds are
// family independent (nft's icmpx): the dataplane sends the ICMPv4 or
// ICMPv6 error that means the same.
type RejectKind uint8

const (
	RejectPortUnreachable RejectKind = iota // the default
	RejectHostUnreachable
	RejectAdminProhibited
	RejectNetUnreachable
	RejectTCPReset
)

// Verdict is the rule's final word.
type Verdict struct {
	Pos    Pos
	Kind   VerdictKind
	Target string // jump, goto
	// reject: the protocol word written after `with` ("icmp", "icmpv6",
	// "icmpx", "tcp"; "" for a bare reject) and the code's nft name,
	// kept so the listing prints what was written.
	RejectProto string
	RejectName  string
	Reject      RejectKind
	NAT         *NATSpec // VNAT
}
