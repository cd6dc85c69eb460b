package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/filter"
	"github.com/ferry-router/ferry/nat"
)

// NAT (NAT44) hangs on the connection table. The first packet of a
// connection runs the ruleset's nat chains: dnat at prerouting (port
// forwards), snat and masquerade at postrouting. The translation is
// written into the new entry's Reply tuple before it is confirmed, so
// every later packet of the connection, in either direction and on any
// worker, finds what to rewrite in the entry: a packet of direction d
// leaves as the inverse of the other direction's tuple. Destinations are
// rewritten at prerouting (before the route lookup), sources at
// postrouting, as Linux does.
//
// Source mappings come from the nat package's table: endpoint-independent
// (one inside endpoint, one outside endpoint, whatever it talks to), its
// filtering as [nat] filtering says. An outside host starting a flow to a
// live mapping's endpoint is let in (dnatNew) when the filtering allows.
// A packet that left through a port forward back out of the port it came
// in by (an inside host reaching the forward through the public address:
// hairpin) is also masqueraded, so the server answers through ferry.

// natLinger keeps a mapping whose last session ended: with conntrack's
// 30 s for an unanswered UDP flow it makes the 2 minutes RFC 4787 REQ-5
// asks of a UDP mapping.
const natLinger = 90 * time.Second

// natStatic marks an entry translated by a dnat rule alone: it holds no
// mapping to release. Other handles are a mapping's id + 1.
const natStatic = ^uint32(0)

// natHandle and natID convert between nat's mapping ids and the handle
// kept in an entry (0 means no NAT).
func natHandle(id uint32) uint32 { return id + 1 }
func natID(h uint32) uint32      { return h - 1 }

func ep(a [16]byte, port uint16) nat.Endpoint {
	return nat.Endpoint{Addr: [4]byte(a[12:]), Port: port}
}

func natProto(p uint8) bool { return p == protoTCP || p == protoUDP || p == protoICMP }

// dnat runs at prerouting, after the filter: new flows through the dnat
// rules (or a mapping that lets them in), then every translated packet's
// destination.
func (w *worker) dnat() {
	if w.rules == nil || !w.rules.nat {
		return
	}
	for _, p := range w.vec {
		if p.next != stagePrerouting || p.cs.fp.Family != 4 {
			continue
		}
		if p.flags&flagCtNew != 0 {
			w.dnatNew(p)
			if p.next != stagePrerouting {
				continue
			}
		}
		if p.cs.nat != 0 {
			w.translate(p, false)
		}
	}
}

func (w *worker) dnatNew(p *Packet) {
	cs := p.cs
	fp := &cs.fp
	if !natProto(fp.L4Proto) {
		return
	}
	sc := &cs.scratch
	res := w.rules.prog.EvalNAT(filter.HookPrerouting, fp, w.rules.ctr[w.slot], w.nowNS)
	if res.Action != filter.ActAccept {
		w.forgetNew(p)
		p.Drop(DropFilterPrerouting)
		return
	}
	if res.NAT != 0 {
		spec := w.rules.prog.NAT(res.NAT)
		to := pickTarget(spec, &sc.Orig)
		sc.Reply.Src = conntrack.V4(to.Addr)
		if to.Port != 0 && fp.L4Proto != protoICMP {
			sc.Reply.SrcPort = to.Port
		}
		sc.NAT = natStatic
	} else if fp.HasPorts && fp.L4Proto != protoICMP {
		// An outside host opening a flow to a mapping's endpoint.
		inside, id, ok := w.r.nat.Inbound(fp.L4Proto, ep(sc.Orig.Dst, sc.Orig.DstPort), ep(sc.Orig.Src, sc.Orig.SrcPort), w.nowNS)
		if !ok {
			return
		}
		sc.Reply.Src, sc.Reply.SrcPort = conntrack.V4(inside.Addr), inside.Port
		sc.NAT = natHandle(id)
	} else {
		return
	}
	cs.nat, cs.other = sc.NAT, sc.Reply
	if cs.frag >= 0 {
		w.frags[cs.frag].nat, w.frags[cs.frag].other = cs.nat, cs.other
	}
}

// pickTarget chooses a dnat rule's address (and port) for a flow: a range
// is spread by the flow's hash, so a flow always gets the same server.
func pickTarget(s *filter.NATSpec, t *conntrack.Tuple) nat.Endpoint {
	lo, hi := s.AddrLo.As4(), s.AddrHi.As4()
	a, b := binary.BigEndian.Uint32(lo[:]), binary.BigEndian.Uint32(hi[:])
	h := binary.BigEndian.Uint32(t.Src[12:16])*2654435761 ^ uint32(t.SrcPort)*40503
	n := a + h%(b-a+1)
	var out nat.Endpoint
	binary.BigEndian.PutUint32(out.Addr[:], n)
	if s.PortLo != 0 {
		out.Port = s.PortLo + uint16(h%uint32(s.PortHi-s.PortLo+1))
	}
	return out
}

// snat runs at postrouting, after the filter: new flows through the snat
// and masquerade rules (and hairpin), then every translated packet's
// source.
func (w *worker) snat() {
	if w.rules == nil || !w.rules.nat {
		return
	}
	for _, p := range w.vec {
		if p.next != stagePostrouting || p.cs.fp.Family != 4 {
			continue
		}
		if p.flags&flagCtNew != 0 {
			w.snatNew(p)
			if p.next != stagePostrouting {
				continue
			}
		}
		if p.cs.nat != 0 {
			w.translate(p, true)
		}
	}
}

func (w *worker) snatNew(p *Packet) {
	cs := p.cs
	fp := &cs.fp
	sc := &cs.scratch
	if !natProto(fp.L4Proto) || (sc.NAT != 0 && sc.NAT != natStatic) {
		return
	}
	fp.OIf = p.out
	res := w.rules.prog.EvalNAT(filter.HookPostrouting, fp, w.rules.ctr[w.slot], w.nowNS)
	if res.Action != filter.ActAccept {
		w.forgetNew(p)
		p.Drop(DropFilterPostrouting)
		return
	}
	var pool nat.Pool
	pool.Filtering = w.r.natFiltering
	switch {
	case res.NAT != 0 && w.rules.prog.NAT(res.NAT).Kind == filter.NATSNAT:
		s := w.rules.prog.NAT(res.NAT)
		pool.Lo, pool.Hi, pool.PortLo, pool.PortHi = s.AddrLo.As4(), s.AddrHi.As4(), s.PortLo, s.PortHi
	case res.NAT != 0 || (sc.NAT == natStatic && p.out == p.in):
		// masquerade, or the hairpin of a port forward
		a, ok := w.r.ports[p.out].v4Addr()
		if !ok {
			w.forgetNew(p)
			p.Drop(DropNATNoAddress)
			return
		}
		pool.Lo, pool.Hi = a, a
		if res.NAT != 0 {
			s := w.rules.prog.NAT(res.NAT)
			pool.PortLo, pool.PortHi = s.PortLo, s.PortHi
		}
	default:
		return
	}
	inside := ep(sc.Orig.Src, sc.Orig.SrcPort)
	remote := ep(sc.Reply.Src, sc.Reply.SrcPort)
	ext, id, err := w.r.nat.Map(fp.L4Proto, inside, remote, &pool, w.nowNS)
	if err != nil {
		w.forgetNew(p)
		if err == nat.ErrPoolExhausted {
			p.Drop(DropNATPoolExhausted)
		} else {
			p.Drop(DropNATTableFull)
		}
		return
	}
	sc.Reply.Dst = conntrack.V4(ext.Addr)
	if fp.L4Proto == protoICMP {
		sc.Reply.SrcPort = ext.Port // the query identifier keys both directions
	} else {
		sc.Reply.DstPort = ext.Port
	}
	sc.NAT = natHandle(id)
	cs.nat, cs.other = sc.NAT, sc.Reply
	if cs.frag >= 0 {
		w.frags[cs.frag].nat, w.frags[cs.frag].other = cs.nat, cs.other
	}
}

// translate rewrites p's destination (at prerouting) or source (at
// postrouting) into the inverse of its connection's other tuple.
func (w *worker) translate(p *Packet, source bool) {
	cs := p.cs
	o := &cs.other
	ip := header.IPv4(p.IP())
	hl, end := int(ip.HeaderLength()), min(int(ip.TotalLength()), len(ip))
	var l4 []byte
	if ip.FragmentOffset() == 0 && hl <= end {
		l4 = ip[hl:end]
	}
	fp := &cs.fp
	if fp.L4Proto == protoICMP && fp.CtState == filter.CtRelated && isICMPError(fp.ICMPType) {
		// An error about a translated packet: the quoted packet becomes
		// what its sender sent (the connection's other tuple), the error
		// goes to that sender, and an error from the quoted packet's
		// destination host comes from where the sender sent it. Done once,
		// where the error enters the pipeline: prerouting (before the
		// route lookup) or, for ferry's own, postrouting.
		if source != (p.flags&flagLocalOrigin != 0) {
			return
		}
		if !w.translateError(ip, o) {
			p.Drop(DropNATBadICMP)
		}
		return
	}
	partial := p.needsCsum()
	if source {
		want := ep(o.Dst, o.DstPort)
		if fp.L4Proto == protoICMP {
			want.Port = o.SrcPort
		}
		if want.Addr != [4]byte(ip.SourceAddressSlice()) || (fp.HasPorts && want.Port != curPort(fp, cs.id, true)) {
			if l4 == nil || !fp.HasPorts {
				want.Port = 0
			}
			nat.SetSource(ip, l4, want, partial)
		}
		return
	}
	want := ep(o.Src, o.SrcPort)
	if want.Addr != [4]byte(ip.DestinationAddressSlice()) || (fp.HasPorts && want.Port != curPort(fp, cs.id, false)) {
		if l4 == nil || !fp.HasPorts {
			want.Port = 0
		}
		nat.SetDest(ip, l4, want, partial)
		// The forward chain sees the translated destination, as in Linux.
		fp.Dst = conntrack.V4(want.Addr)
		if fp.L4Proto != protoICMP && want.Port != 0 {
			fp.DstPort = want.Port
		}
	}
}

func (w *worker) translateError(ip header.IPv4, o *conntrack.Tuple) bool {
	q := header.ICMPv4(ip.Payload())
	if len(q) < icmpHdrLen+header.IPv4MinimumSize {
		return false
	}
	quoted := header.IPv4(q.Payload())
	oldQDst := [4]byte(quoted.DestinationAddressSlice())
	dstPort := o.DstPort
	if o.Proto == protoICMP {
		dstPort = o.SrcPort // the query identifier, on both sides
	}
	outerSrc := [4]byte(ip.SourceAddressSlice())
	if outerSrc == oldQDst {
		outerSrc = [4]byte(o.Dst[12:])
	}
	return nat.TranslateICMPError(ip, [4]byte(o.Src[12:]), ep(o.Src, o.SrcPort)) &&
		nat.TranslateICMPErrorDest(ip, outerSrc, ep(o.Dst, dstPort))
}

// curPort is the packet's port on one side, or its ICMP identifier.
func curPort(fp *filter.Packet, id uint16, source bool) uint16 {
	if fp.L4Proto == protoICMP {
		return id
	}
	if source {
		return fp.SrcPort
	}
	return fp.DstPort
}

// forgetNew abandons p's unconfirmed new flow, giving back a mapping
// reference it took.
func (w *worker) forgetNew(p *Packet) {
	if p.flags&flagCtNew == 0 {
		return
	}
	p.flags &^= flagCtNew
	if h := p.cs.scratch.NAT; h != 0 && h != natStatic {
		w.r.nat.Release(natID(h), w.nowNS)
	}
	p.cs.scratch.NAT = 0
}

// v4Addr is the port's first IPv4 address: masquerade's source.
func (p *port) v4Addr() ([4]byte, bool) {
	for _, a := range p.addrs {
		if a.Addr().Is4() {
			return a.Addr().As4(), true
		}
	}
	return [4]byte{}, false
}

// natRemoved is the connection table's OnRemove: an entry that held a
// mapping reference gives it back.
func (r *Router) natRemoved(h uint32) {
	if h != natStatic && r.nat != nil {
		r.nat.Release(natID(h), r.nowNS())
	}
}

func natFiltering(s string) nat.Filtering {
	switch s {
	case "address-dependent":
		return nat.AddressDependent
	case "address-port-dependent":
		return nat.AddressPortDependent
	}
	return nat.EndpointIndependent
}

// NATStatus is `show nat`: the mapping table's counters and its mappings.
type NATStatus struct {
	Stats     nat.Stats `json:"stats"`
	Filtering string    `json:"filtering"`
	Mappings  []string  `json:"mappings"`
	Truncated bool      `json:"truncated"`
}

// NAT lists the source mappings (at most limit; 0: all).
func (r *Router) NAT(limit int) NATStatus {
	st := NATStatus{Stats: r.nat.Stats(), Filtering: [...]string{"endpoint-independent", "address-dependent", "address-port-dependent"}[r.natFiltering]}
	r.nat.Walk(r.nowNS(), func(m nat.MappingInfo) bool {
		if limit > 0 && len(st.Mappings) >= limit {
			st.Truncated = true
			return false
		}
		name := "icmp"
		switch m.Proto {
		case protoTCP:
			name = "tcp"
		case protoUDP:
			name = "udp"
		}
		st.Mappings = append(st.Mappings, fmt.Sprintf("%-4s %s:%d -> %s:%d sessions=%d idle=%s remotes=%d",
			name, netip.AddrFrom4(m.Inside.Addr), m.Inside.Port, netip.AddrFrom4(m.External.Addr), m.External.Port,
			m.Refs, m.IdleFor.Round(time.Second), len(m.Remotes)))
		return true
	})
	return st
}

// NATSessions lists the translated connections, as conntrack -L shows
// them (the reply tuple carries the translation).
func (r *Router) NATSessions(f ConntrackFilter) ConntrackStatus {
	return r.listConntrack(f, true)
}

// FlushNAT removes every translated connection and every mapping.
func (r *Router) FlushNAT() {
	r.ct.Flush()
	r.nat.Flush()
}
