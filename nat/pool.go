package nat

import "math/rand/v2"

// How hard Map looks for a free external endpoint.
const (
	// preserveAddrs: pool addresses on which the original port is tried.
	preserveAddrs = 16
	// randomProbes: random endpoints of the right class and parity tried
	// next (RFC 6056 algorithm 1, bounded), the first half on the
	// preferred address.
	randomProbes = 64
	// scanWindow: consecutive endpoints scanned last, from a random start.
	scanWindow = 4096
)

// portRange is the range new ports for an inside port orig are taken from:
// the class of orig (1-1023 or 1024-65535; RFC 4787 REQ-3) intersected with
// the pool's ports when that leaves any, else the pool's ports as given.
// ICMP identifiers have no class. Port 0 is never handed out for TCP/UDP.
func portRange(proto uint8, orig uint16, pool *Pool) (lo, hi uint32) {
	all := pool.PortLo == 0 && pool.PortHi == 0
	if proto == ProtoICMP {
		if all {
			return 0, 65535
		}
		return uint32(pool.PortLo), uint32(pool.PortHi)
	}
	clo, chi := uint32(1024), uint32(65535)
	if orig >= 1 && orig < 1024 {
		clo, chi = 1, 1023
	}
	if all {
		return clo, chi
	}
	lo, hi = max(uint32(pool.PortLo), clo), min(uint32(pool.PortHi), chi)
	if lo > hi {
		lo, hi = max(uint32(pool.PortLo), 1), uint32(pool.PortHi)
		if lo > hi { // the pool is port 0 alone
			lo, hi = 1, 65535
		}
	}
	return lo, hi
}

// prober yields the candidate external endpoints for a new mapping, in
// order: the original port on up to preserveAddrs pool addresses starting
// at the preferred one, randomProbes random ones, then a linear scan.
type prober struct {
	alo      uint32 // first pool address
	nAddr    uint64
	pref     uint64 // preferred address index (paired pooling, best effort)
	lo, n    uint32 // port range start and size
	orig     uint32
	parity   bool // keep the parity of orig (RFC 4787 REQ-4)
	preserve bool
	phase    uint8
	i        uint64
	idx      uint64 // scan position: address index * n + port offset
	total    uint64
}

func (p *prober) init(proto uint8, inside Endpoint, pool *Pool) {
	p.alo = be32(pool.Lo)
	p.nAddr = uint64(be32(pool.Hi)) - uint64(p.alo) + 1
	if p.nAddr > 1 {
		p.pref = mix(uint64(be32(inside.Addr)), 0, 0x5bd1e995) % p.nAddr
	}
	lo, hi := portRange(proto, inside.Port, pool)
	p.lo, p.n = lo, hi-lo+1
	p.orig = uint32(inside.Port)
	p.preserve = p.orig >= lo && p.orig <= hi && (p.orig != 0 || proto == ProtoICMP)
	p.parity = proto != ProtoICMP && p.n >= 2
}

func (p *prober) addr(i uint64) [4]byte {
	a := p.alo + uint32(i)
	return [4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}
}

func (p *prober) next() (Endpoint, bool) {
	for {
		switch p.phase {
		case 0:
			if p.preserve && p.i < min(p.nAddr, preserveAddrs) {
				a := (p.pref + p.i) % p.nAddr
				p.i++
				return Endpoint{p.addr(a), uint16(p.orig)}, true
			}
			p.phase, p.i = 1, 0
		case 1:
			if p.i < randomProbes {
				a := p.pref
				if p.i >= randomProbes/2 && p.nAddr > 1 {
					a = rand.Uint64N(p.nAddr)
				}
				p.i++
				port := p.lo + rand.Uint32N(p.n)
				if p.parity && port&1 != p.orig&1 {
					if port-p.lo+1 < p.n {
						port++
					} else {
						port-- // the range's last port; n >= 2
					}
				}
				return Endpoint{p.addr(a), uint16(port)}, true
			}
			p.phase, p.i = 2, 0
			p.total = p.nAddr * uint64(p.n)
			p.idx = rand.Uint64N(p.total)
		default:
			if p.i >= min(p.total, scanWindow) {
				return Endpoint{}, false
			}
			p.i++
			a, port := p.idx/uint64(p.n), p.lo+uint32(p.idx%uint64(p.n))
			p.idx++
			if p.idx == p.total {
				p.idx = 0
			}
			return Endpoint{p.addr(a), uint16(port)}, true
		}
	}
}
