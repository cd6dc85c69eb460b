package dataplane

import (
	"encoding/binary"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/fib"
)

// IPv4 options (RFC 791 section 3.1; RFC 1812 5.2.4 says what a router
// does with them). Packets without options never get here: input and
// forward only call in when the header is longer than 20 bytes.
//
// input    parseOptions checks the list as Linux's ip_options_compile
//          checks a received packet: a malformed one is answered with ICMP
//          Parameter Problem pointing at the byte at fault; a source route
//          is dropped unless the ingress port has accept_source_route.
// route    a source-routed packet addressed to ferry takes its next address
//          from the route data (sourceRoute) and is routed again.
// forward  stampOptions fills Record Route and Timestamp with the egress
//          address and the time, and writes the egress address into the
//          source route's slot, as Linux's ip_forward_options does.
//
// Router Alert and unknown options pass untouched. The fragment stage
// copies into later fragments only the options whose copy flag is set
// (copiedOptions in fragment.go).
//
// The parsing and the rewriting are pure functions over the header, so
// they are unit-tested and fuzzed without a pipeline. gvisor's option
// iterator returns each option as an interface (a heap allocation per
// option), so the walk is ferry's own; the option bodies are read through
// gvisor's views (IPv4OptionRecordRoute, IPv4OptionTimestamp).

// Option types ferry acts on (RFC 791; RFC 2113 for Router Alert).
const (
	optEnd  = byte(header.IPv4OptionListEndType)
	optNOP  = byte(header.IPv4OptionNOPType)
	optRR   = byte(header.IPv4OptionRecordRouteType)
	optTS   = byte(header.IPv4OptionTimestampType)
	optLSRR = 0x83
	optSSRR = 0x89
	optRA   = byte(header.IPv4OptionRouterAlertType)

	// Source routes share Record Route's layout: type, length, pointer,
	// then addresses; the smallest pointer is 4.
	optPtrOff   = header.IPv4OptRRPointerOffset
	optRRMinPtr = 4
	optTSMinPtr = 5
)

// ipOpts is where parseOptions found the options ferry acts on, as offsets
// from the start of the IP header (0: absent).
type ipOpts struct {
	rr, ts, srr uint8
	strict      bool // srr is a strict source route
	ra          bool // router alert
}

// parseOptions checks the option list of h, whose header checksum and
// length input has already verified. bad is 0 for a well-formed list, or
// the offset from the start of the header of the byte at fault, the
// pointer ICMP Parameter Problem carries (RFC 792, RFC 1812 5.2.4.2): the
// option's type byte for a length that overruns the list or a repeated
// option, its length byte for a length too short for its kind, its
// pointer byte for a pointer out of range, its overflow/flag byte for a
// bad timestamp flag or an overflow counter that would wrap. These are
// the bytes Linux points at.
func parseOptions(h header.IPv4) (o ipOpts, bad int) {
	ihl := int(h.HeaderLength())
	opts := h[ipv4MinHdr:ihl]
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == optEnd {
			break
		}
		if t == optNOP {
			i++
			continue
		}
		at := ipv4MinHdr + i
		if i+1 >= len(opts) {
			return o, at
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return o, at
		}
		opt := opts[i : i+l]
		switch t {
		case optRR:
			if o.rr != 0 {
				return o, at
			}
			if l < header.IPv4OptionRecordRouteHdrLength {
				return o, at + 1
			}
			rr := header.IPv4OptionRecordRoute(opt)
			if p := int(rr.Pointer()); p < optRRMinPtr || (p <= l && p+3 > l) {
				return o, at + optPtrOff
			}
			o.rr = uint8(at)
		case optLSRR, optSSRR:
			if o.srr != 0 {
				return o, at
			}
			if l < 3 {
				return o, at + 1
			}
			if p := int(opt[optPtrOff]); p < optRRMinPtr || (p <= l && p+3 > l) {
				return o, at + optPtrOff
			}
			o.srr, o.strict = uint8(at), t == optSSRR
		case optTS:
			if o.ts != 0 {
				return o, at
			}
			if l < header.IPv4OptionTimestampHdrLength {
				return o, at + 1
			}
			ts := header.IPv4OptionTimestamp(opt)
			p := int(ts.Pointer())
			if p < optTSMinPtr {
				return o, at + optPtrOff
			}
			if p <= l {
				need := header.IPv4OptionTimestampSize
				switch ts.Flags() {
				case header.IPv4OptionTimestampOnlyFlag:
				case header.IPv4OptionTimestampWithIPFlag, header.IPv4OptionTimestampWithPredefinedIPFlag:
					need = header.IPv4OptionTimestampWithAddrSize
				default:
					return o, at + header.IPv4OptTSOFLWAndFLGOffset
				}
				if p+need-1 > l {
					return o, at + optPtrOff
				}
			} else if ts.Overflow() == 0xf {
				// Full, and the overflow counter cannot count this hop.
				return o, at + header.IPv4OptTSOFLWAndFLGOffset
			}
			o.ts = uint8(at)
		case optRA:
			if l != header.IPv4OptionRouterAlertLength {
				return o, at + 1
			}
			o.ra = true
		}
		i += l
	}
	return o, 0
}

// stampOptions does what a router does to options on the way out (RFC 791,
// RFC 1812 5.2.4): it records egress, the address of the interface the
// packet leaves by, in Record Route while there is room, and in the slot a
// source route was taken from (srHit); it adds ms (milliseconds since
// midnight UT) to a Timestamp option, with egress for flag 1, and for flag
// 3 only where the next prespecified address is one of ours; a full
// timestamp area counts the hop in its overflow field. It reports whether
// the header changed; the caller then recomputes its checksum. o must come
// from parseOptions on this header.
func stampOptions(h header.IPv4, o ipOpts, srHit bool, egress, ms uint32, ours []uint32) bool {
	changed := false
	if o.rr != 0 {
		rr := header.IPv4OptionRecordRoute(h[o.rr : int(o.rr)+int(h[o.rr+1])])
		if p := int(rr.Pointer()); p+3 <= len(rr) {
			binary.BigEndian.PutUint32(rr[p-1:], egress)
			rr[optPtrOff] += 4
			changed = true
		}
	}
	if srHit && o.srr != 0 {
		// sourceRoute advanced the pointer past the address it took; that
		// slot now records the address ferry sends from (RFC 791).
		sr := h[o.srr : int(o.srr)+int(h[o.srr+1])]
		if p := int(sr[optPtrOff]); p >= optRRMinPtr+4 && p-5+4 <= len(sr) {
			binary.BigEndian.PutUint32(sr[p-5:], egress)
			changed = true
		}
	}
	if o.ts != 0 {
		ts := header.IPv4OptionTimestamp(h[o.ts : int(o.ts)+int(h[o.ts+1])])
		p := int(ts.Pointer())
		switch ts.Flags() {
		case header.IPv4OptionTimestampOnlyFlag:
			if p+3 <= len(ts) {
				binary.BigEndian.PutUint32(ts[p-1:], ms)
				ts[optPtrOff] += header.IPv4OptionTimestampSize
				changed = true
			}
		case header.IPv4OptionTimestampWithIPFlag:
			if p+7 <= len(ts) {
				binary.BigEndian.PutUint32(ts[p-1:], egress)
				binary.BigEndian.PutUint32(ts[p+3:], ms)
				ts[optPtrOff] += header.IPv4OptionTimestampWithAddrSize
				changed = true
			}
		case header.IPv4OptionTimestampWithPredefinedIPFlag:
			if p+7 <= len(ts) {
				if a := binary.BigEndian.Uint32(ts[p-1:]); isOneOf(a, ours) {
					binary.BigEndian.PutUint32(ts[p+3:], ms)
					ts[optPtrOff] += header.IPv4OptionTimestampWithAddrSize
					changed = true
				}
				// Not ours: the slot waits for the router it names.
				return changed
			}
		}
		if p > len(ts) {
			ts.IncOverflow() // parseOptions refused a counter at 15
			changed = true
		}
	}
	return changed
}

// takeSourceRoute moves a source-routed packet addressed to this hop on
// to the next address of its route (RFC 791 loose and strict source
// routing): the destination becomes that address and the pointer moves
// past it. It reports false when the route is used up (the packet has
// arrived). The header checksum is left to the caller.
func takeSourceRoute(h header.IPv4, o ipOpts) bool {
	if o.srr == 0 {
		return false
	}
	sr := h[o.srr : int(o.srr)+int(h[o.srr+1])]
	p := int(sr[optPtrOff])
	if p+3 > len(sr) {
		return false
	}
	copy(h[16:20], sr[p-1:p+3])
	sr[optPtrOff] += 4
	return true
}

func isOneOf(a uint32, set []uint32) bool {
	for _, b := range set {
		if a == b {
			return true
		}
	}
	return false
}

// msSinceMidnightUT is RFC 791's timestamp.
func msSinceMidnightUT(t time.Time) uint32 {
	return uint32(t.Unix()%86400*1000 + int64(t.Nanosecond())/1e6)
}

// inputOptions is input's check of a header longer than 20 bytes. It
// reports false when the packet was turned into an error or dropped.
func (w *worker) inputOptions(p *Packet, h header.IPv4) bool {
	o, bad := parseOptions(h)
	if bad != 0 {
		w.icmpError(p, icmpParamProblem, 0, bad, DropIPBadOptions)
		return false
	}
	if o.srr != 0 {
		if !w.r.ports[p.in].acceptSourceRoute {
			// Linux's accept_source_route = 0: silently, as a martian.
			p.Drop(DropSourceRoute)
			return false
		}
		p.flags |= flagSourceRoute
	}
	p.flags |= flagOptions
	return true
}

// sourceRoute is route's handling of a source-routed packet addressed to
// ferry: it takes the next address and routes the packet again. It reports
// false when the route is used up and the packet is ferry's to deliver.
func (w *worker) sourceRoute(p *Packet, depth int) bool {
	h := header.IPv4(p.buf[p.l3 : p.off+p.n])
	o, _ := parseOptions(h)
	if !takeSourceRoute(h, o) {
		return false
	}
	p.flags |= flagSRHit
	setHeaderChecksum(h)
	dst := binary.BigEndian.Uint32(h[16:])
	hop := w.lookupOne(p, dst, p.in)
	if o.strict && hop != nil && hop.Type == fib.Unicast && hop.Gateway != 0 {
		// Strict: the next address must be a neighbour (RFC 1812 5.2.4.1).
		w.icmpError(p, icmpDestUnreachable, icmpSourceRouteFailed, 0, DropSourceRouteFailed)
		return true
	}
	if hop != nil && hop.Type == fib.Local && depth < 10 {
		if w.sourceRoute(p, depth+1) {
			return true
		}
	}
	w.applyRoute(p, dst, hop)
	return true
}

// forwardOptions stamps the options of a forwarded packet and fixes its
// header checksum (the TTL was decremented before, incrementally).
func (w *worker) forwardOptions(p *Packet, h header.IPv4) {
	o, _ := parseOptions(h)
	egress := w.r.ports[p.out].sourceFor(p.nh)
	if stampOptions(h, o, p.flags&flagSRHit != 0, egress, msSinceMidnightUT(w.now), w.r.ours) {
		setHeaderChecksum(h)
	}
}

// setHeaderChecksum recomputes an IPv4 header checksum from scratch, for
// headers whose options changed in more than a word or two.
func setHeaderChecksum(h header.IPv4) {
	h.SetChecksum(0)
	h.SetChecksum(^checksum.Checksum(h[:h.HeaderLength()], 0))
}
