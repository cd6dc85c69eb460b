package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/dataplane/neigh"
	"github.com/ferry-router/ferry/fib"
	"github.com/ferry-router/ferry/iface"
)

var (
	ip6A    = netip.MustParseAddr("2001:db8:1::2")
	ip6R0   = netip.MustParseAddr("2001:db8:1::1")
	ip6B    = netip.MustParseAddr("2001:db8:2::2")
	ip6R1   = netip.MustParseAddr("2001:db8:2::1")
	ip6Far  = netip.MustParseAddr("2001:db8:3::9")  // routed via B
	ip6None = netip.MustParseAddr("2001:db8:99::1") // no route
	ip6Proh = netip.MustParseAddr("2001:db8:4::1")  // prohibit route
	llA     = netip.MustParseAddr("fe80::a")
	llR0    = netip.AddrFrom16(eui64LinkLocal(macR0))
)

// newRig6 is newRig with IPv6 on both ports (r1's MTU is 1300), A and B
// as static neighbours, a route via B, a prohibit route and router
// advertisements on r0. DAD is not run: the addresses are usable at once.
func newRig6(t testing.TB, mutate func(*config.Config)) *rig {
	return newRig(t, func(c *config.Config) {
		c.Interfaces[0].Addresses = append(c.Interfaces[0].Addresses, netip.MustParsePrefix("2001:db8:1::1/64"))
		c.Interfaces[1].Addresses = append(c.Interfaces[1].Addresses, netip.MustParsePrefix("2001:db8:2::1/64"))
		c.Interfaces[0].RA = &config.RA{MaxInterval: 600 * time.Second, MinInterval: 200 * time.Second, Lifetime: 1800 * time.Second,
			HopLimit: 64, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")}, ValidLifetime: time.Hour,
			PreferredLifetime: time.Minute, MTU: 1500, RDNSS: []netip.Addr{netip.MustParseAddr("2001:db8:1::53")}, RDNSSLifetime: time.Hour}
		c.Neighbors = append(c.Neighbors, config.Neighbor{IP: ip6A, MAC: macA[:], Dev: "r0"}, config.Neighbor{IP: ip6B, MAC: macB[:], Dev: "r1"},
			config.Neighbor{IP: llA, MAC: macA[:], Dev: "r0"})
		c.Routes = append(c.Routes,
			config.Route{Prefix: netip.MustParsePrefix("2001:db8:3::/48"), Via: ip6B, Type: "unicast", Table: fib.TableMain},
			config.Route{Prefix: netip.MustParsePrefix("2001:db8:4::/48"), Type: "prohibit", Table: fib.TableMain})
		if mutate != nil {
			mutate(c)
		}
	})
}

// pkt6 builds an Ethernet frame with an IPv6 header, extension headers
// (already encoded, their first byte's next header is patched) and payload.
type pkt6 struct {
	srcMAC, dstMAC [6]byte
	src, dst       netip.Addr
	proto          byte
	hl             byte
	ext            [][]byte // each extension header, next-header byte patched
	extProto       []byte   // the protocol number of each ext header
	payload        []byte
}

func (s pkt6) frame() []byte {
	var ext []byte
	next := s.proto
	for i := len(s.ext) - 1; i >= 0; i-- {
		e := append([]byte(nil), s.ext[i]...)
		e[0] = next
		next = s.extProto[i]
		ext = append(e, ext...)
	}
	b := make([]byte, 14+40+len(ext)+len(s.payload))
	copy(b[0:6], s.dstMAC[:])
	copy(b[6:12], s.srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], etherTypeIPv6)
	ip := header.IPv6(b[14:])
	ip.Encode(&header.IPv6Fields{PayloadLength: uint16(len(ext) + len(s.payload)), HopLimit: s.hl})
	ip[6] = next
	a, d := s.src.As16(), s.dst.As16()
	copy(ip.SourceAddressSlice(), a[:])
	copy(ip.DestinationAddressSlice(), d[:])
	copy(ip[40:], ext)
	copy(ip[40+len(ext):], s.payload)
	if s.proto == nhICMPv6 && len(s.payload) >= 4 {
		m := header.ICMPv6(ip[40+len(ext):])
		m.SetChecksum(icmp6Checksum(ip, m))
	}
	return b
}

func aToB6(hl byte, payload []byte) pkt6 {
	return pkt6{srcMAC: macA, dstMAC: macR0, src: ip6A, dst: ip6B, proto: nhUDP, hl: hl, payload: payload}
}

func echo6Request(n int) []byte {
	p := make([]byte, 8+n)
	p[0] = icmp6EchoRequest
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	binary.BigEndian.PutUint16(p[6:], 1)
	for i := 8; i < len(p); i++ {
		p[i] = byte(i)
	}
	return p
}

// checkIPv6 checks a frame's IPv6 header and returns it.
func checkIPv6(t *testing.T, f []byte) header.IPv6 {
	t.Helper()
	if len(f) < 54 || binary.BigEndian.Uint16(f[12:]) != etherTypeIPv6 {
		t.Fatalf("not an IPv6 frame: % x", f)
	}
	ip := header.IPv6(f[14:])
	if !ip.IsValid(len(ip)) || int(ip.PayloadLength())+40 != len(ip) {
		t.Fatalf("bad IPv6 header or length: % x", f)
	}
	return ip
}

// icmp6From checks an ICMPv6 message (checksum with the pseudo-header)
// and returns its type, code, source and the message.
func icmp6From(t *testing.T, f []byte) (typ, code byte, src netip.Addr, m header.ICMPv6) {
	t.Helper()
	ip := checkIPv6(t, f)
	if ip.NextHeader() != nhICMPv6 {
		t.Fatalf("next header %d, want ICMPv6", ip.NextHeader())
	}
	m = header.ICMPv6(ip[40:])
	if !icmp6ChecksumOK(ip, m) {
		t.Fatalf("bad ICMPv6 checksum")
	}
	return m[0], m[1], netip.AddrFrom16([16]byte(ip.SourceAddressSlice())), m
}

func TestForward6(t *testing.T) {
	g := newRig6(t, nil)
	in := aToB6(64, udpPayload(32)).frame()
	far := aToB6(64, udpPayload(33))
	far.dst = ip6Far
	g.run(0, in, far.frame())
	out := g.sent(1)
	if len(out) != 2 {
		t.Fatalf("sent %d frames on r1, want 2; drops %v", len(out), g.drops(0))
	}
	for _, f := range out {
		if !bytes.Equal(f[0:6], macB[:]) || !bytes.Equal(f[6:12], macR1[:]) {
			t.Errorf("MACs dst %x src %x, want %x %x", f[0:6], f[6:12], macB, macR1)
		}
		if ip := checkIPv6(t, f); ip.HopLimit() != 63 {
			t.Errorf("hop limit %d, want 63", ip.HopLimit())
		}
	}
	if !bytes.Equal(out[0][14+8:], in[14+8:]) {
		t.Errorf("addresses or payload changed")
	}
}

func TestICMPv6Errors(t *testing.T) {
	g := newRig6(t, nil)
	noRoute := aToB6(64, udpPayload(8))
	noRoute.dst = ip6None
	prohibited := aToB6(64, udpPayload(8))
	prohibited.dst = ip6Proh
	llSrc := aToB6(64, udpPayload(8))
	llSrc.src = llA
	toFerry := aToB6(64, udpPayload(8))
	toFerry.dst = ip6R0
	tests := []struct {
		name       string
		in         []byte
		typ, code  byte
		param      uint32
		from       netip.Addr
		drop       string
		quoteBytes int
	}{
		{"hop limit", aToB6(1, udpPayload(8)).frame(), icmp6TimeExceeded, icmp6HopLimitExceeded, 0, ip6R0, "hop_limit_exceeded", 56},
		{"too big", aToB6(64, udpPayload(1400)).frame(), icmp6PacketTooBig, 0, 1300, ip6R0, "packet_too_big", 1232},
		{"no route", noRoute.frame(), icmp6DestUnreachable, icmp6NoRoute, 0, ip6R0, "no_route", 56},
		{"prohibited", prohibited.frame(), icmp6DestUnreachable, icmp6AdminProhibited, 0, ip6R0, "prohibited", 56},
		{"beyond scope", llSrc.frame(), icmp6DestUnreachable, icmp6BeyondScope, 0, llR0, "ip6_beyond_scope", 56},
		{"port unreachable", toFerry.frame(), icmp6DestUnreachable, icmp6PortUnreachable, 0, ip6R0, "local_port_unreachable", 56},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.w.rl = rateLimiter{}
			before := g.drops(0)[tc.drop]
			g.run(0, tc.in)
			out := g.sent(0)
			if len(out) != 1 {
				t.Fatalf("sent %d frames back, want 1; drops %v", len(out), g.drops(0))
			}
			typ, code, src, m := icmp6From(t, out[0])
			if typ != tc.typ || code != tc.code || src != tc.from || m.TypeSpecific() != tc.param {
				t.Errorf("got %d/%d param %d from %v, want %d/%d param %d from %v", typ, code, m.TypeSpecific(), src, tc.typ, tc.code, tc.param, tc.from)
			}
			if !bytes.Equal(out[0][0:6], macA[:]) {
				t.Errorf("sent to %x, want A", out[0][0:6])
			}
			if q := m[8:]; len(q) != tc.quoteBytes || !bytes.Equal(q, tc.in[14:14+len(q)]) {
				t.Errorf("quote %d bytes, want %d of the original", len(q), tc.quoteBytes)
			}
			if len(out[0])-14 > 1280 {
				t.Errorf("error is %d bytes, more than 1280", len(out[0])-14)
			}
			if g.drops(0)[tc.drop] != before+1 {
				t.Errorf("drops %v, want %s counted", g.drops(0), tc.drop)
			}
		})
	}
}

func TestNoICMPv6ErrorAboutErrors(t *testing.T) {
	g := newRig6(t, nil)
	s := aToB6(1, []byte{icmp6DestUnreachable, 0, 0, 0, 0, 0, 0, 0})
	s.proto = nhICMPv6
	g.run(0, s.frame())
	if out := g.sent(0); len(out) != 0 {
		t.Fatalf("answered an error with an error")
	}
	if g.drops(0)["icmp_error_suppressed"] != 1 {
		t.Errorf("drops %v", g.drops(0))
	}
}

func TestICMPv6ErrorRateLimit(t *testing.T) {
	g := newRig6(t, nil)
	var frames [][]byte
	for i := 0; i < 20; i++ {
		frames = append(frames, aToB6(1, udpPayload(8)).frame())
	}
	g.run(0, frames...)
	if n := len(g.sent(0)); n != 6 {
		t.Errorf("%d time exceeded sent for 20 packets at once, want the burst of 6", n)
	}
	if g.drops(0)["icmp_error_ratelimited"] != 14 {
		t.Errorf("drops %v", g.drops(0))
	}
}

func TestEcho6(t *testing.T) {
	g := newRig6(t, nil)
	for _, tc := range []struct{ src, dst netip.Addr }{{ip6A, ip6R0}, {llA, llR0}, {ip6A, ip6R1}} {
		s := pkt6{srcMAC: macA, dstMAC: macR0, src: tc.src, dst: tc.dst, proto: nhICMPv6, hl: 64, payload: echo6Request(56)}
		g.run(0, s.frame())
		out := g.sent(0)
		if len(out) != 1 {
			t.Fatalf("%v -> %v: sent %d replies; drops %v", tc.src, tc.dst, len(out), g.drops(0))
		}
		typ, _, src, m := icmp6From(t, out[0])
		ip := header.IPv6(out[0][14:])
		if typ != icmp6EchoReply || src != tc.dst || netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())) != tc.src || !bytes.Equal(m[4:], s.payload[4:]) {
			t.Errorf("%v: reply type %d from %v", tc.dst, typ, src)
		}
	}
	s := pkt6{srcMAC: macA, dstMAC: macR0, src: ip6A, dst: ip6R0, proto: nhICMPv6, hl: 64, payload: echo6Request(8)}
	f := s.frame()
	f[len(f)-1] ^= 1
	g.run(0, f)
	if len(g.sent(0)) != 0 || g.drops(0)["icmp_bad_checksum"] != 1 {
		t.Errorf("bad checksum: drops %v", g.drops(0))
	}
}

// nsFrame builds a neighbour solicitation for target from src (with its
// link-layer address option unless src is ::).
func nsFrame(srcMAC [6]byte, src netip.Addr, target netip.Addr, unicast bool) []byte {
	g, gmac := solicitedNode6(target.As16())
	dst, dmac := netip.AddrFrom16(g), gmac
	if unicast {
		dst, dmac = target, macR0
	}
	m := make([]byte, 24, 32)
	m[0] = icmp6NeighborSolicit
	t := target.As16()
	copy(m[8:], t[:])
	if !src.IsUnspecified() {
		m = append(m, ndOptSLLA, 1)
		m = append(m, srcMAC[:]...)
	}
	return pkt6{srcMAC: srcMAC, dstMAC: dmac, src: src, dst: dst, proto: nhICMPv6, hl: 255, payload: m}.frame()
}

func naFrame(srcMAC [6]byte, target netip.Addr, flags byte, lla [6]byte) []byte {
	m := make([]byte, 32)
	m[0], m[4] = icmp6NeighborAdvert, flags
	t := target.As16()
	copy(m[8:], t[:])
	m[24], m[25] = ndOptTLLA, 1
	copy(m[26:], lla[:])
	return pkt6{srcMAC: srcMAC, dstMAC: macR1, src: target, dst: ip6R1, proto: nhICMPv6, hl: 255, payload: m}.frame()
}

func TestNeighborSolicitationAnswered(t *testing.T) {
	g := newRig6(t, nil)
	host := netip.MustParseAddr("2001:db8:1::77")
	hostMAC := [6]byte{2, 0, 0, 0, 0, 0x77}
	for _, tc := range []struct {
		target  netip.Addr
		unicast bool
	}{{ip6R0, false}, {ip6R0, true}, {llR0, false}} {
		g.run(0, nsFrame(hostMAC, host, tc.target, tc.unicast))
		out := g.sent(0)
		if len(out) != 1 {
			t.Fatalf("NS for %v: %d frames; drops %v", tc.target, len(out), g.drops(0))
		}
		typ, code, src, m := icmp6From(t, out[0])
		ip := header.IPv6(out[0][14:])
		if typ != icmp6NeighborAdvert || code != 0 || src != tc.target || ip.HopLimit() != 255 ||
			netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())) != host || !bytes.Equal(out[0][0:6], hostMAC[:]) {
			t.Errorf("NA %d/%d from %v hop limit %d to %x", typ, code, src, ip.HopLimit(), out[0][0:6])
		}
		if m[4] != ndNAFlagRouter|ndNAFlagSolic|ndNAFlagOver || netip.AddrFrom16([16]byte(m[8:24])) != tc.target ||
			m[24] != ndOptTLLA || m[25] != 1 || !bytes.Equal(m[26:32], macR0[:]) {
			t.Errorf("NA body % x", m)
		}
	}
	if e := g.r.neigh.Lookup(neighKey6(0, host)); e == nil {
		t.Errorf("sender not learned")
	} else if mac, ok := e.MAC(); !ok || mac != hostMAC {
		t.Errorf("learned %x", mac)
	}
	// DAD from another node for ferry's address: defended to all nodes.
	g.run(0, nsFrame(hostMAC, netip.IPv6Unspecified(), ip6R0, false))
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("DAD probe not defended")
	}
	_, _, _, m := icmp6From(t, out[0])
	if ip := header.IPv6(out[0][14:]); netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())) != netip.MustParseAddr("ff02::1") || m[4] != ndNAFlagRouter|ndNAFlagOver {
		t.Errorf("defence to %x flags %x", out[0][0:6], m[4])
	}
}

func TestNeighborDiscoveryValidity(t *testing.T) {
	g := newRig6(t, nil)
	host := netip.MustParseAddr("2001:db8:1::77")
	hostMAC := [6]byte{2, 0, 0, 0, 0, 0x77}
	good := nsFrame(hostMAC, host, ip6R0, false)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	reck := func(b []byte) { // checksum over the edited message
		ip := header.IPv6(b[14:])
		m := header.ICMPv6(ip[40:])
		m.SetChecksum(icmp6Checksum(ip, m))
	}
	cases := map[string][]byte{
		"hop limit 64":  mod(func(b []byte) { b[14+7] = 64; reck(b) }),
		"code 1":        mod(func(b []byte) { b[14+41] = 1; reck(b) }),
		"bad checksum":  mod(func(b []byte) { b[14+42] ^= 0xff }),
		"zero-len opt":  mod(func(b []byte) { b[14+40+25] = 0; reck(b) }),
		"opt too long":  mod(func(b []byte) { b[14+40+25] = 2; reck(b) }),
		"short":         mod(func(b []byte) { b[14+5] = 16; reck(b[:14+56]) })[:14+56],
		"multicast tgt": mod(func(b []byte) { b[14+48] = 0xff; reck(b) }),
	}
	for name, f := range cases {
		before := g.drops(0)["nd_invalid"]
		g.run(0, f)
		if n := len(g.sent(0)); n != 0 || g.drops(0)["nd_invalid"] != before+1 {
			t.Errorf("%s: %d answers, drops %v", name, n, g.drops(0))
		}
	}
	g.run(0, nsFrame(hostMAC, host, netip.MustParseAddr("2001:db8:1::99"), false))
	if len(g.sent(0)) != 0 || g.drops(0)["nd_not_for_us"] != 1 {
		t.Errorf("NS for another target: drops %v", g.drops(0))
	}
}

func neighKey6(port int, a netip.Addr) neigh.Key { return neigh.Key{Port: port, IP6: a.As16()} }

// Next hops resolve with NS/NA; an unsolicited NA with the override flag
// moves the entry, one without does not.
func TestNeighborResolution6(t *testing.T) {
	g := newRig6(t, func(c *config.Config) { c.Neighbors = append(c.Neighbors[:3], c.Neighbors[4]) }) // B's IPv6 unknown
	g.run(0, aToB6(64, udpPayload(20)).frame(), aToB6(64, udpPayload(21)).frame())
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("want one NS on r1, got %d frames", len(out))
	}
	typ, _, src, m := icmp6From(t, out[0])
	g6, gmac := solicitedNode6(ip6B.As16())
	if typ != icmp6NeighborSolicit || src != ip6R1 || !bytes.Equal(out[0][0:6], gmac[:]) ||
		!bytes.Equal(out[0][14+24:14+40], g6[:]) || netip.AddrFrom16([16]byte(m[8:24])) != ip6B || m[24] != ndOptSLLA {
		t.Errorf("bad NS % x", out[0])
	}
	g.run(1, naFrame(macB, ip6B, ndNAFlagSolic|ndNAFlagOver, macB))
	out = g.sent(1)
	if len(out) != 2 {
		t.Fatalf("after the NA, sent %d queued frames, want 2", len(out))
	}
	for _, f := range out {
		if !bytes.Equal(f[0:6], macB[:]) || checkIPv6(t, f).HopLimit() != 63 {
			t.Errorf("released frame: dst %x", f[0:6])
		}
	}
	e := g.r.neigh.Lookup(neighKey6(1, ip6B))
	if e.State().String() != "REACHABLE" {
		t.Errorf("state %v", e.State())
	}
	other := [6]byte{2, 0, 0, 0, 0, 0xbb}
	g.run(1, naFrame(other, ip6B, 0, other))
	if mac, _ := e.MAC(); mac != macB {
		t.Errorf("NA without override replaced the MAC")
	}
	g.run(1, naFrame(other, ip6B, ndNAFlagOver, other))
	if mac, _ := e.MAC(); mac != other || e.State().String() != "STALE" {
		t.Errorf("unsolicited NA with override: %x %v", mac, e.State())
	}
}

func TestNeighbourFailureSendsAddressUnreachable(t *testing.T) {
	g := newRig6(t, func(c *config.Config) { c.Neighbors = append(c.Neighbors[:3], c.Neighbors[4]) })
	g.run(0, aToB6(64, udpPayload(20)).frame())
	if out := g.sent(1); len(out) != 1 {
		t.Fatalf("first NS: sent %d", len(out))
	}
	start := g.w.now
	for s := 1; s <= 3; s++ {
		g.r.neighbourTimers(start.Add(time.Duration(s)*time.Second + time.Millisecond))
	}
	if n := len(g.links[1].control); n != 2 {
		t.Errorf("%d retransmitted NS, want 2", n)
	}
	errs := g.links[0].control
	if len(errs) != 1 {
		t.Fatalf("%d frames back to A, want 1 address unreachable", len(errs))
	}
	typ, code, src, _ := icmp6From(t, errs[0])
	if typ != icmp6DestUnreachable || code != icmp6AddrUnreachable || src != ip6R0 {
		t.Errorf("got ICMPv6 %d/%d from %v", typ, code, src)
	}
}

func TestRouterAdvertisement(t *testing.T) {
	g := newRig6(t, nil)
	now := time.Now()
	g.r.control6(now) // DAD: one NS per address
	if n := len(g.links[0].control); n != 2 {
		t.Fatalf("%d DAD probes on r0, want 2 (link-local and global)", n)
	}
	g.links[0].control = nil
	g.r.control6(now.Add(1100 * time.Millisecond)) // DAD over; first RA
	g.r.control6(now.Add(1200 * time.Millisecond)) // nothing due
	if n := len(g.links[0].control); n != 1 {
		t.Fatalf("%d RAs, want 1", n)
	}
	if n := len(g.links[1].control); n != 2 {
		t.Errorf("r1 sent %d frames, want only its 2 DAD probes (no RA configured)", n)
	}
	f := g.links[0].control[0]
	typ, code, src, m := icmp6From(t, f)
	ip := header.IPv6(f[14:])
	if typ != icmp6RouterAdvert || code != 0 || src != llR0 || ip.HopLimit() != 255 || !bytes.Equal(f[0:6], allNodesMAC[:]) ||
		netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())) != netip.MustParseAddr("ff02::1") {
		t.Fatalf("RA %d/%d from %v hop limit %d", typ, code, src, ip.HopLimit())
	}
	if m[4] != 64 || binary.BigEndian.Uint16(m[6:]) != 1800 {
		t.Errorf("cur hop limit %d, lifetime %d", m[4], binary.BigEndian.Uint16(m[6:]))
	}
	seen := map[byte]bool{}
	for o := m[16:]; len(o) > 0; o = o[int(o[1])*8:] {
		seen[o[0]] = true
		switch o[0] {
		case ndOptSLLA:
			if !bytes.Equal(o[2:8], macR0[:]) {
				t.Errorf("SLLA %x", o[2:8])
			}
		case ndOptMTU:
			if binary.BigEndian.Uint32(o[4:]) != 1500 {
				t.Errorf("MTU option %d", binary.BigEndian.Uint32(o[4:]))
			}
		case ndOptPrefix:
			if o[2] != 64 || o[3] != 0xc0 || binary.BigEndian.Uint32(o[4:]) != 3600 || binary.BigEndian.Uint32(o[8:]) != 60 ||
				netip.AddrFrom16([16]byte(o[16:32])) != netip.MustParseAddr("2001:db8:1::") {
				t.Errorf("prefix option % x", o)
			}
		case ndOptRDNSS:
			if o[1] != 3 || netip.AddrFrom16([16]byte(o[8:24])) != netip.MustParseAddr("2001:db8:1::53") {
				t.Errorf("RDNSS option % x", o)
			}
		}
	}
	if len(seen) != 4 {
		t.Errorf("options %v, want SLLA, MTU, prefix, RDNSS", seen)
	}

	// A solicitation is answered within 0.5 s, but not within 3 s of the last RA.
	g.links[0].control = nil
	rs := pkt6{srcMAC: macA, dstMAC: [6]byte{0x33, 0x33, 0, 0, 0, 2}, src: llA, dst: netip.MustParseAddr("ff02::2"), proto: nhICMPv6, hl: 255,
		payload: append([]byte{icmp6RouterSolicit, 0, 0, 0, 0, 0, 0, 0, ndOptSLLA, 1}, macA[:]...)}
	g.run(0, rs.frame())
	g.r.control6(now.Add(2 * time.Second))
	if n := len(g.links[0].control); n != 0 {
		t.Errorf("answered a solicitation 0.9 s after the last RA")
	}
	g.r.control6(now.Add(4200 * time.Millisecond))
	if n := len(g.links[0].control); n != 1 {
		t.Errorf("solicitation not answered: %d RAs", n)
	}
	if e := g.r.neigh.Lookup(neighKey6(0, llA)); e == nil {
		t.Errorf("soliciting host not learned")
	}
	rs.hl = 1
	g.run(0, rs.frame())
	if g.drops(0)["nd_invalid"] != 1 {
		t.Errorf("RS with hop limit 1: drops %v", g.drops(0))
	}
}

// An NA for a tentative address during DAD makes ferry give it up.
func TestDuplicateAddressDetection(t *testing.T) {
	g := newRig6(t, nil)
	g.r.markTentative()
	now := time.Now()
	g.r.control6(now)
	probe := g.links[1].control[1] // r1: link-local first, then 2001:db8:2::1
	ip := checkIPv6(t, probe)
	g6, gmac := solicitedNode6(ip6R1.As16())
	if !isUnspecified6(ip.SourceAddressSlice()) || !bytes.Equal(ip.DestinationAddressSlice(), g6[:]) || !bytes.Equal(probe[0:6], gmac[:]) || len(ip) != 40+24 {
		t.Errorf("DAD probe % x", probe)
	}
	// While tentative, ferry answers no solicitation for it.
	g.run(1, nsFrame(macB, ip6B, ip6R1, false))
	if n := len(g.sent(1)); n != 0 {
		t.Errorf("answered for a tentative address")
	}
	other := [6]byte{2, 0, 0, 0, 0, 0xdd}
	na := naFrame(other, ip6R1, ndNAFlagOver, other)
	g.run(1, na)
	g.r.control6(now.Add(1100 * time.Millisecond))
	x := g.r.ports[1].v6.own(ip6R1.AsSlice())
	if !x.off.Load() || x.tentative.Load() {
		t.Fatalf("address kept after a defence")
	}
	if ll := g.r.ports[1].v6.ll; !ll.usable() {
		t.Errorf("link-local address not usable after DAD")
	}
	if got := g.r.Interfaces()[1].Addresses; got[len(got)-1] != "2001:db8:2::1/64 dadfailed" {
		t.Errorf("addresses %v", got)
	}
	g.run(1, nsFrame(macB, ip6B, ip6R1, false))
	if n := len(g.sent(1)); n != 0 || g.drops(1)["nd_not_for_us"] != 1 {
		t.Errorf("answered for a given-up address; drops %v", g.drops(1))
	}
}

func TestBadInput6(t *testing.T) {
	g := newRig6(t, nil)
	base := aToB6(64, udpPayload(20)).frame()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), base...)) }
	opts := func(n int) []byte { b := make([]byte, 8*n); b[1] = byte(n - 1); return b }
	withExt := func(ext [][]byte, protos []byte) []byte {
		s := aToB6(64, udpPayload(20))
		s.ext, s.extProto = ext, protos
		return s.frame()
	}
	var many [][]byte
	var manyP []byte
	for i := 0; i < 9; i++ {
		many, manyP = append(many, opts(1)), append(manyP, nhDestOpts)
	}
	badOpt := opts(1)
	badOpt[2], badOpt[3] = 0x3e, 10 // option running past its header
	mcast := aToB6(64, udpPayload(20))
	mcast.dst = netip.MustParseAddr("ff0e::1")
	llDst := aToB6(64, udpPayload(20))
	llDst.dst = netip.MustParseAddr("fe80::b")
	lo := aToB6(64, udpPayload(20))
	lo.src = netip.IPv6Loopback()
	cases := []struct {
		name string
		f    []byte
		drop string
	}{
		{"short", base[:14+39], "ip6_truncated"},
		{"payload beyond frame", mod(func(b []byte) []byte { return b[:len(b)-1] }), "ip6_truncated"},
		{"version 4", mod(func(b []byte) []byte { b[14] = 0x40; return b }), "ip6_bad_version"},
		{"jumbo", mod(func(b []byte) []byte { b[18], b[19] = 0, 0; return b }), "ip6_bad_payload_length"},
		{"nine dest opts", withExt(many, manyP), "ip6_bad_extension_headers"},
		{"ext past end", mod(func(b []byte) []byte { b[20] = nhDestOpts; b[54+1] = 200; return b }), "ip6_bad_extension_headers"},
		{"bad hbh option", withExt([][]byte{badOpt}, []byte{nhHopByHop}), "ip6_bad_extension_headers"},
		{"multicast", mcast.frame(), "ip6_multicast_not_forwarded"},
		{"link-local dst", llDst.frame(), "ip6_link_local_not_forwarded"},
		{"loopback src", lo.frame(), "ip6_martian_source"},
	}
	for _, tc := range cases {
		before := g.drops(0)[tc.drop]
		g.run(0, tc.f)
		if n := len(g.sent(1)) + len(g.sent(0)); n != 0 || g.drops(0)[tc.drop] != before+1 {
			t.Errorf("%s: %d frames sent; drops %v", tc.name, n, g.drops(0))
		}
	}
	// A hop-by-hop header anywhere but first: parameter problem code 1
	// pointing at the next-header field that named it.
	g.run(0, withExt([][]byte{opts(1), opts(1)}, []byte{nhDestOpts, nhHopByHop}))
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("misplaced hop-by-hop: %d frames; drops %v", len(out), g.drops(0))
	}
	if typ, code, _, m := icmp6From(t, out[0]); typ != icmp6ParamProblem || code != icmp6UnknownHeader || m.TypeSpecific() != 40 {
		t.Errorf("got %d/%d pointer %d", typ, code, m.TypeSpecific())
	}
	// Extension headers that are well formed are walked and forwarded.
	g.run(0, withExt([][]byte{opts(1), opts(2)}, []byte{nhHopByHop, nhDestOpts}))
	if n := len(g.sent(1)); n != 1 {
		t.Errorf("packet with hop-by-hop and destination options: %d forwarded; drops %v", n, g.drops(0))
	}
}

// GSO frames are forwarded whole when their segments fit the egress MTU
// and answered with packet too big when they do not.
func TestGSO6(t *testing.T) {
	g := newRig6(t, nil)
	tcp := make([]byte, 20+4000)
	tcp[12] = 5 << 4
	s := aToB6(64, tcp)
	s.proto = nhTCP
	f := s.frame()
	inject := func(gsoSize uint16) {
		v := make([]byte, iface.VnetHdrLen)
		v[1] = iface.VnetGSOTCPv6
		binary.LittleEndian.PutUint16(v[4:], gsoSize)
		q := g.links[0].queues[0]
		q.in = append(q.in, append(v, f...))
		for g.w.read() > 0 {
			g.w.process()
		}
	}
	inject(1200)
	if out := g.sent(1); len(out) != 1 || len(out[0]) != len(f) {
		t.Fatalf("GSO frame with 1260-byte segments not forwarded whole; drops %v", g.drops(0))
	}
	inject(1400)
	out := g.sent(0)
	if len(out) != 1 {
		t.Fatalf("GSO frame with 1460-byte segments: %d answers; drops %v", len(out), g.drops(0))
	}
	if typ, _, _, m := icmp6From(t, out[0]); typ != icmp6PacketTooBig || m.TypeSpecific() != 1300 {
		t.Errorf("got type %d mtu %d", typ, m.TypeSpecific())
	}
}

// TestZeroAllocsPerPacket6: steady-state IPv6 forwarding allocates nothing.
func TestZeroAllocsPerPacket6(t *testing.T) {
	g := newRig6(t, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		s := aToB6(64, udpPayload(18))
		s.dst = ip6Far
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 64 IPv6 packets, want 0", allocs)
	}
	if g.r.Interfaces()[1].TxPackets == 0 {
		t.Fatal("nothing forwarded")
	}
	// The slow paths that answer (echo, time exceeded) do not allocate either.
	q.in = q.in[:0]
	for i := 0; i < 32; i++ {
		e := pkt6{srcMAC: macA, dstMAC: macR0, src: ip6A, dst: ip6R0, proto: nhICMPv6, hl: 64, payload: echo6Request(56)}
		q.in = append(q.in, append(make([]byte, 10), e.frame()...))
		q.in = append(q.in, append(make([]byte, 10), nsFrame(macA, ip6A, ip6R0, false)...))
	}
	g.links[0].queues[0].keep = true
	if allocs := testing.AllocsPerRun(100, func() { g.w.read(); g.w.process() }); allocs != 0 {
		t.Fatalf("%.1f allocations per batch of echo requests and NS, want 0", allocs)
	}
}

// BenchmarkPipelineForward6 is BenchmarkPipelineForward for IPv6: b.N
// counts packets; compare its ns/op with the IPv4 one.
func BenchmarkPipelineForward6(b *testing.B) {
	g := newRig6(b, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB6(64, udpPayload(18)).frame()...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}

// FuzzInput6 feeds arbitrary IPv6 frames (and so ND messages) to a router
// with IPv6 and router advertisements: whatever arrives is forwarded,
// answered or dropped with a reason, never a crash, and anything sent is
// a well-formed frame.
func FuzzInput6(f *testing.F) {
	f.Add(aToB6(64, udpPayload(20)).frame()[12:])
	f.Add(nsFrame(macA, ip6A, ip6R0, false)[12:])
	f.Add(naFrame(macB, ip6B, ndNAFlagOver, macB)[12:])
	f.Add(pkt6{srcMAC: macA, dstMAC: macR0, src: ip6A, dst: ip6R0, proto: nhICMPv6, hl: 64, payload: echo6Request(8)}.frame()[12:])
	g := newRig6(f, func(c *config.Config) { c.Neighbors = append(c.Neighbors[:3], c.Neighbors[4]) })
	f.Fuzz(func(t *testing.T, tail []byte) {
		fr := append(append(append([]byte(nil), macR0[:]...), macA[:]...), tail...)
		if len(fr) >= 14 {
			fr[12], fr[13] = etherTypeIPv6>>8, etherTypeIPv6&0xff
		}
		g.run(0, fr)
		for pi := range g.links {
			for _, o := range g.sent(pi) {
				if len(o) < 14 || len(o) > 14+len(tail)+1280 {
					t.Fatalf("sent a %d-byte frame for %d bytes in", len(o), len(fr))
				}
			}
		}
	})
}

func TestRouteGet6(t *testing.T) {
	g := newRig6(t, nil)
	s, err := g.r.RouteGet(ip6Far, netip.Addr{}, "", 0)
	if err != nil || s.Type != "unicast" || s.Via != ip6B.String() || s.Dev != "r1" || s.Src != ip6R1.String() || s.Table != "main" {
		t.Errorf("route get %v: %+v %v", ip6Far, s, err)
	}
	if s, err := g.r.RouteGet(ip6R0, netip.Addr{}, "", 0); err != nil || s.Type != "local" {
		t.Errorf("route get %v: %+v %v", ip6R0, s, err)
	}
	if s, err := g.r.RouteGet(llR0, netip.Addr{}, "r0", 0); err != nil || s.Type != "local" || s.Dev != "r0" {
		t.Errorf("route get %v iif r0: %+v %v", llR0, s, err)
	}
	if _, err := g.r.RouteGet(ip6None, netip.Addr{}, "", 0); err == nil {
		t.Errorf("route get %v: no error", ip6None)
	}
	if _, err := g.r.RouteGet(ip6Far, ipA, "", 0); err == nil {
		t.Errorf("mixed families: no error")
	}
}

type familyHook struct{ v4, v6 int }

func (h *familyHook) Name() string { return "family" }
func (h *familyHook) Process(pkts []*Packet) {
	for _, p := range pkts {
		if p.IsIPv6() {
			h.v6++
		} else {
			h.v4++
		}
	}
}

// Hooks see IPv6 packets too, marked so that IPv4-only hooks skip them.
func TestHooksSeeIPv6(t *testing.T) {
	g := newRig6(t, nil)
	h := &familyHook{}
	g.r.hooks.Forward = []Hook{h}
	g.run(0, aToB6(64, udpPayload(8)).frame(), aToB(64, udpPayload(8)).frame())
	if h.v4 != 1 || h.v6 != 1 {
		t.Errorf("forward hook saw %d IPv4 and %d IPv6 packets, want 1 and 1", h.v4, h.v6)
	}
	if n := len(g.sent(1)); n != 2 {
		t.Errorf("forwarded %d", n)
	}
}

// Packets to ferry: a routing header with segments left and an unknown
// next header behind extension headers get parameter problems with the
// right pointers; an unknown hop-by-hop option whose type says so, too.
func TestLocalParameterProblems6(t *testing.T) {
	g := newRig6(t, nil)
	rh := make([]byte, 24) // type 0, 1 segment left, one address
	rh[1], rh[2], rh[3] = 2, 0, 1
	do := make([]byte, 8)
	hbh := make([]byte, 8)
	hbh[2], hbh[3] = 0x87, 4 // unknown option, action 10: discard and report
	cases := []struct {
		name    string
		ext     [][]byte
		protos  []byte
		proto   byte
		code    byte
		pointer uint32
	}{
		{"routing header", [][]byte{rh}, []byte{nhRouting}, nhUDP, icmp6ErroneousHeader, 42},
		{"unknown next header", [][]byte{do}, []byte{nhDestOpts}, 253, icmp6UnknownHeader, 40},
		{"unknown option", [][]byte{hbh}, []byte{nhHopByHop}, nhUDP, icmp6UnknownOption, 42},
	}
	for _, tc := range cases {
		g.w.rl = rateLimiter{}
		s := aToB6(64, udpPayload(8))
		s.dst, s.ext, s.extProto, s.proto = ip6R0, tc.ext, tc.protos, tc.proto
		g.run(0, s.frame())
		out := g.sent(0)
		if len(out) != 1 {
			t.Fatalf("%s: %d answers; drops %v", tc.name, len(out), g.drops(0))
		}
		typ, code, _, m := icmp6From(t, out[0])
		if typ != icmp6ParamProblem || code != tc.code || m.TypeSpecific() != tc.pointer {
			t.Errorf("%s: got %d/%d pointer %d, want %d/%d pointer %d", tc.name, typ, code, m.TypeSpecific(), icmp6ParamProblem, tc.code, tc.pointer)
		}
	}
}

// A route via a link-local gateway resolves it on the named port (the NS
// comes from ferry's link-local address), and an ECMP route over IPv6
// gateways keeps each flow on one member.
func TestLinkLocalGatewayAndECMP6(t *testing.T) {
	llB := netip.MustParseAddr("fe80::b")
	llC := netip.MustParseAddr("fe80::c")
	macC := [6]byte{2, 0, 0, 0, 0, 0xc}
	g := newRig6(t, func(c *config.Config) {
		c.Routes = append(c.Routes,
			config.Route{Prefix: netip.MustParsePrefix("2001:db8:5::/48"), Via: llB, Dev: "r1", Type: "unicast", Table: fib.TableMain},
			config.Route{Prefix: netip.MustParsePrefix("2001:db8:6::/48"), Type: "unicast", Table: fib.TableMain,
				Nexthops: []config.Nexthop{{Via: llB, Dev: "r1", Weight: 1}, {Via: llC, Dev: "r1", Weight: 1}}})
		c.Neighbors = append(c.Neighbors, config.Neighbor{IP: llC, MAC: macC[:], Dev: "r1"})
	})
	s := aToB6(64, udpPayload(8))
	s.dst = netip.MustParseAddr("2001:db8:5::1")
	g.run(0, s.frame())
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("want an NS for fe80::b, got %d frames; drops %v", len(out), g.drops(0))
	}
	typ, _, src, m := icmp6From(t, out[0])
	if typ != icmp6NeighborSolicit || src != netip.AddrFrom16(eui64LinkLocal(macR1)) || netip.AddrFrom16([16]byte(m[8:24])) != llB {
		t.Errorf("NS %d from %v for %v", typ, src, netip.AddrFrom16([16]byte(m[8:24])))
	}
	// ECMP: 64 flows (by UDP source port) spread over B and C, each
	// flow's packets on one member.
	g.r.neigh.AddStatic(neighKey6(1, llB), macB)
	g.sent(1)
	member := map[uint16][6]byte{}
	for round := 0; round < 2; round++ {
		for port := uint16(0); port < 64; port++ {
			p := udpPayload(8)
			binary.BigEndian.PutUint16(p, 1000+port)
			s := aToB6(64, p)
			s.dst = netip.MustParseAddr("2001:db8:6::1")
			g.run(0, s.frame())
			out := g.sent(1)
			if len(out) != 1 {
				t.Fatalf("flow %d: %d frames", port, len(out))
			}
			mac := [6]byte(out[0][0:6])
			if old, ok := member[port]; ok && old != mac {
				t.Errorf("flow %d moved from %x to %x", port, old, mac)
			}
			member[port] = mac
		}
	}
	n := map[[6]byte]int{}
	for _, m := range member {
		n[m]++
	}
	if n[macB] == 0 || n[macC] == 0 || len(n) != 2 {
		t.Errorf("flows per member %v, want both B and C used", n)
	}
}
