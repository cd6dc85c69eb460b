package dataplane

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/fib"
)

// Router advertisements (RFC 4861 6.2) and duplicate address detection
// (RFC 4862 5.4), both run by the control goroutine: they are timers, not
// per-packet work, and their frames go out through link.SendControl as
// ARP and NS retries do.

// RFC 4861 10: router constants.
const (
	maxInitialRAs        = 3
	maxInitialRAInterval = 16 * time.Second
	minDelayBetweenRAs   = 3 * time.Second
	maxRADelay           = 500 * time.Millisecond
	dadWait              = time.Second // RetransTimer, with DupAddrDetectTransmits = 1
)

// raState is a port's advertisement timer, owned by the control goroutine
// except solicited, which workers set when a solicitation arrives.
type raState struct {
	solicited atomic.Bool
	next      time.Time // next advertisement
	last      time.Time // last multicast advertisement
	sent      int
}

// control6 runs DAD once at start, then the advertisement timers.
func (r *Router) control6(now time.Time) {
	if r.dadEnd.IsZero() {
		r.dadEnd = now.Add(dadWait)
		r.startDAD()
		return
	}
	if !r.dadDone {
		if now.Before(r.dadEnd) {
			return
		}
		r.dadDone = true
		r.finishDAD()
	}
	for _, p := range r.ports {
		if p.v6.ra != nil && !p.gone.Load() {
			r.raTimer(p, now)
		}
	}
}

// startDAD sends one solicitation from :: for each of ferry's IPv6
// addresses. They are tentative until finishDAD.
func (r *Router) startDAD() {
	var frame [ndFrameLen]byte
	for _, p := range r.ports {
		for _, x := range p.v6.all {
			g, gmac := solicitedNode6(x.a)
			n := buildND(frame[:], icmp6NeighborSolicit, gmac, p.mac, [16]byte{}, g, x.a, 0, 0, [6]byte{})
			if err := p.link.SendControl(frame[:n]); err != nil {
				r.log.Debug("duplicate address detection: send failed", "port", p.name, "err", err)
			}
		}
	}
}

// finishDAD makes every address that nobody defended usable, and gives up
// the others: their local routes go, so ferry neither answers for them
// nor claims their traffic.
func (r *Router) finishDAD() {
	for _, p := range r.ports {
		for _, x := range p.v6.all {
			if x.conflict.Load() {
				x.off.Store(true)
				a := netip.AddrFrom16(x.a)
				r.log.Error("IPv6 address is in use by another node; ferry gives it up", "port", p.name, "address", a)
				if !a.IsLinkLocalUnicast() {
					r.ctlMu.Lock()
					lr := fib.Route{Prefix: netip.PrefixFrom(a, 128), Type: fib.Local, Dev: p.idx}
					r.policy.Table(fib.TableLocal).Delete(lr)
					r.ctlMu.Unlock()
				}
			}
			x.tentative.Store(false)
		}
	}
}

// markTentative is called before the workers start: every address waits
// for DAD.
func (r *Router) markTentative() {
	for _, p := range r.ports {
		for _, x := range p.v6.all {
			x.tentative.Store(true)
		}
	}
}

// raTimer sends an advertisement when one is due: the first few quickly
// (RFC 4861 6.2.4), then at a random interval between the configured
// minimum and maximum, as radvd does; a solicitation brings the next one
// forward to within maxRADelay, but never closer than minDelayBetweenRAs
// to the last (6.2.6), and the answer goes to all nodes.
func (r *Router) raTimer(p *port, now time.Time) {
	s := &p.v6.raState
	if s.next.IsZero() {
		s.next = now
	}
	if s.solicited.Swap(false) {
		at := now.Add(time.Duration(rand.Int64N(int64(maxRADelay))))
		if earliest := s.last.Add(minDelayBetweenRAs); at.Before(earliest) {
			at = earliest
		}
		if at.Before(s.next) {
			s.next = at
		}
	}
	if now.Before(s.next) || !p.v6.ll.usable() {
		return
	}
	var frame [1500]byte
	n := buildRA(frame[:], p, p.v6.ra.Lifetime)
	if err := p.link.SendControl(frame[:n]); err != nil {
		r.log.Debug("router advertisement: send failed", "port", p.name, "err", err)
	}
	s.last = now
	s.sent++
	ra := p.v6.ra
	d := ra.MinInterval + time.Duration(rand.Int64N(int64(ra.MaxInterval-ra.MinInterval)+1))
	if s.sent <= maxInitialRAs && d > maxInitialRAInterval {
		d = maxInitialRAInterval
	}
	s.next = now.Add(d)
}

// buildRA writes a router advertisement from p's link-local address to all
// nodes at b and returns the frame's length: Cur Hop Limit, router
// lifetime, then the options source link-layer address, MTU, one prefix
// information option per prefix (on-link and autonomous) and RDNSS
// (RFC 8106). Options that would not fit a 1500-byte frame are left out.
func buildRA(b []byte, p *port, lifetime time.Duration) int {
	ra := p.v6.ra
	copy(b[0:6], allNodesMAC[:])
	copy(b[6:12], p.mac[:])
	binary.BigEndian.PutUint16(b[12:], etherTypeIPv6)
	ip := header.IPv6(b[ethHdrLen:])
	m := b[ethHdrLen+ipv6HdrLen:]
	clear(m[:16])
	m[0] = icmp6RouterAdvert
	m[4] = ra.HopLimit
	binary.BigEndian.PutUint16(m[6:], uint16(lifetime/time.Second))
	n := 16
	opt := func(typ byte, units int) []byte {
		if ethHdrLen+ipv6HdrLen+n+units*8 > len(b) {
			return nil
		}
		o := m[n : n+units*8]
		clear(o)
		o[0], o[1] = typ, byte(units)
		n += units * 8
		return o
	}
	if o := opt(ndOptSLLA, 1); o != nil {
		copy(o[2:8], p.mac[:])
	}
	if ra.MTU != 0 {
		if o := opt(ndOptMTU, 1); o != nil {
			binary.BigEndian.PutUint32(o[4:], uint32(ra.MTU))
		}
	}
	for _, pf := range ra.Prefixes {
		o := opt(ndOptPrefix, 4)
		if o == nil {
			break
		}
		o[2] = byte(pf.Bits())
		o[3] = 0xc0 // L (on-link) and A (autonomous address configuration)
		binary.BigEndian.PutUint32(o[4:], lifeSeconds(ra.ValidLifetime))
		binary.BigEndian.PutUint32(o[8:], lifeSeconds(ra.PreferredLifetime))
		a := pf.Addr().As16()
		copy(o[16:32], a[:])
	}
	if len(ra.RDNSS) > 0 {
		if o := opt(ndOptRDNSS, 1+2*len(ra.RDNSS)); o != nil {
			binary.BigEndian.PutUint32(o[4:], lifeSeconds(ra.RDNSSLifetime))
			for i, a := range ra.RDNSS {
				x := a.As16()
				copy(o[8+16*i:], x[:])
			}
		}
	}
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          ndHopLimit,
	})
	copy(ip.SourceAddressSlice(), p.v6.ll.a[:])
	copy(ip.DestinationAddressSlice(), allNodes6[:])
	ip = ip[:ipv6HdrLen+n]
	header.ICMPv6(m[:n]).SetChecksum(icmp6Checksum(ip, header.ICMPv6(m[:n])))
	return ethHdrLen + ipv6HdrLen + n
}

func lifeSeconds(d time.Duration) uint32 {
	s := d / time.Second
	if s > 0xffffffff {
		return 0xffffffff // infinity
	}
	return uint32(s)
}
