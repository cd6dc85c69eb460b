// Package config reads ferryd's TOML configuration and checks it, so that a
// mistake is reported with the file, line, key and what is wrong before any
// port is opened.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Config is the whole of ferryd's configuration.
type Config struct {
	// File is the path the config was read from (for error messages and reload).
	File       string
	Dataplane  Dataplane
	Control    Control
	Metrics    Metrics
	Interfaces []Interface
	Tables     []Table
	Routes     []Route
	Rules      []Rule
	Neighbors  []Neighbor
	Ruleset    Ruleset
	Conntrack  Conntrack
	NAT        NAT
}

// NAT tunes the translations the ruleset's nat chains ask for.
type NAT struct {
	// Filtering is what an outside host may send to a mapping an inside
	// endpoint opened (RFC 4787): "endpoint-independent" (the default:
	// any host, which peer-to-peer needs), "address-dependent" (hosts the
	// inside endpoint sent to) or "address-port-dependent" (those
	// addresses and ports, as Linux's masquerade).
	Filtering   string
	MaxMappings int // bound on mappings (default 262144)
}

// Ruleset names the nftables-syntax file that holds ferry's filter (and
// NAT) tables. It is parsed by the filter package, whose errors name that
// file's line and column; an empty File means no rules: everything is
// accepted and nothing is tracked.
type Ruleset struct {
	File string // absolute, or relative to the config file's directory when written
	Line int
}

// Conntrack sizes the connection table the filter and NAT share.
type Conntrack struct {
	Max      int  // entries; a flood of new flows fills it to this and no further
	TCPLoose bool // pick up TCP connections mid-stream (Linux nf_conntrack_tcp_loose)
	// Timeouts override the protocol defaults (Linux's), keyed as Linux's
	// sysctls without the nf_conntrack_ prefix: "tcp_timeout_established".
	Timeouts map[string]time.Duration
}

// Table names a routing table, as /etc/iproute2/rt_tables does. The
// tables main (254), local (255) and default (253) are always known.
type Table struct {
	ID   uint32
	Name string
	Line int
}

// Dataplane holds worker and ring settings.
type Dataplane struct {
	Workers    int // worker goroutines; each port gets one queue per worker (default: number of CPUs)
	BatchSize  int // frames handled per worker iteration (default 64)
	RingFrames int // frames in each RX and TX ring (0: 4 MiB of slots per ring, at least 256)
	FrameSize  int // bytes per ring frame (0: the port's MTU frame, at least 2048); larger frames (GSO) bypass the slots whole
	// BusyPoll is how long a worker keeps checking its rings after the
	// last frame before it sleeps in poll(2) (default 100µs; 0 never spins).
	BusyPoll time.Duration
	// Mode is "router" (the full pipeline) or "io-only": a benchmark floor
	// that moves frames between exactly two ports with only the MAC
	// rewrite, to show what the ports cost without the pipeline.
	Mode string
}

// Control holds the ferryctl socket settings.
type Control struct {
	Socket string // unix socket path, created with mode 0600 (default /run/ferry/ferryd.sock)
}

// Metrics is the opt-in Prometheus endpoint.
type Metrics struct {
	// Listen is the TCP address (host:port) ferryd serves /metrics on,
	// in ferryd's own network namespace; empty: no endpoint.
	Listen string
	Line   int
}

// Interface is one port.
type Interface struct {
	Name string // Linux interface name
	Kind string // "afpacket", "tun" (layer 3) or "tap" (layer 2)
	// Addresses are ferry's own IPv4 and IPv6 addresses with prefix
	// length. An IPv6 link-local one (fe80::/10) replaces the address
	// ferry would otherwise derive from the MAC (EUI-64).
	Addresses []netip.Prefix
	MTU       int              // 0: use the link's MTU
	MAC       net.HardwareAddr // nil: use the link's MAC
	// KernelRx lets the kernel's own stack receive the port's frames as
	// well. By default ferry takes them alone: the kernel has no address
	// there and would only parse, route and drop every frame a second time
	// (see iface/ingress_linux.go for what that costs).
	KernelRx bool
	// IPv4 settings named and defaulted as Linux's net.ipv4.conf.<dev>.*:
	// AcceptSourceRoute forwards source-routed packets (default false:
	// dropped); BCForwarding forwards directed broadcasts that arrive on
	// this port (default false); SendRedirects sends ICMP redirects to
	// hosts on this port (the loader's default is true); RPFilter is 0
	// (off, the default), 1 (strict) or 2 (loose).
	AcceptSourceRoute bool
	BCForwarding      bool
	SendRedirects     bool
	RPFilter          int
	// RA, when set, makes ferry send IPv6 router advertisements on the port.
	RA *RA
	// Owner and Group (uid, gid) may use a TUN/TAP device ferry creates
	// without privileges; -1 leaves it unchanged.
	Owner, Group int
	// ClampMSS clamps the MSS option of forwarded TCP SYNs that enter or
	// leave this port to the smaller MTU of the two ports less the IP and
	// TCP headers, or to ClampMSSTo when that is set (default: on for TUN).
	ClampMSS   bool
	ClampMSSTo int
	Line       int // line in the config file where this interface is declared
}

// Route is a static route.
type Route struct {
	Prefix netip.Prefix // masked
	Via    netip.Addr   // zero: directly connected through Dev
	Dev    string       // empty: derived from Via's connected network
	Metric uint32
	Type   string // "unicast" (default), "blackhole", "unreachable", "prohibit"
	Table  uint32 // routing table id; main (254) by default
	// Nexthops makes the route ECMP: traffic is spread over them by flow
	// hash. Via and Dev are then unset.
	Nexthops []Nexthop
	Line     int
}

// Nexthop is one member of an ECMP route.
type Nexthop struct {
	Via    netip.Addr
	Dev    string
	Weight uint32 // relative share, >= 1
}

// Rule is a policy routing rule, like `ip rule`: packets matching every
// selector set take its action; rules are tried by ascending priority and
// a lookup that finds no route falls through to the next rule.
type Rule struct {
	Priority uint32       // 1..4294967295; 0 is the local table's rule
	From     netip.Prefix // source; invalid = any
	To       netip.Prefix // destination; invalid = any
	IIf      string       // input interface; empty = any
	Mark     uint32
	MarkMask uint32 // 0 means any mark (when Mark is 0 too)
	Action   string // "lookup", "blackhole", "unreachable", "prohibit"
	Table    uint32 // for lookup
	Line     int
}

// Neighbor is a static ARP entry.
type Neighbor struct {
	IP   netip.Addr
	MAC  net.HardwareAddr
	Dev  string
	Line int
}
