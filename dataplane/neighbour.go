package dataplane

import (
	"github.com/ferry-router/ferry/dataplane/neigh"
	"github.com/ferry-router/ferry/iface"
)

// queuedPrefix is what a frame waiting for ARP carries in front of its
// virtio_net_hdr: one byte naming its ingress port, so that if resolution
// fails the ICMP host unreachable can be sourced like any other error.
const queuedPrefix = 1 + iface.VnetHdrLen

// neighbour finds the MAC of each packet's next hop. A resolved entry is a
// lock-free lookup; an unresolved one parks the packet in the entry's small
// queue (the frame is copied, the buffer goes back to the batch) and sends
// an ARP request, or for IPv6 a neighbour solicitation. The packets come
// back through arp.go (nd.go) when the reply (advertisement) arrives, or as
// ICMP host unreachable (ICMPv6 address unreachable) when the table gives
// up. A TUN port (port.l3) has no link layer: its packets go straight on.
func (w *worker) neighbour() {
	for _, p := range w.vec {
		if p.next != stageNeighbour {
			continue
		}
		if p.flags&flagMACSet != 0 || w.r.ports[p.out].l3 {
			// A TUN has no link layer: the frame's header is stripped.
			p.next = stageRewrite
			continue
		}
		w.resolve(p)
	}
}

// resolve sends p to rewrite with its next hop's MAC in place, or parks it.
func (w *worker) resolve(p *Packet) {
	k := neigh.Key{Port: p.out, IP: p.nh}
	if p.flags&flagIPv6 != 0 {
		k = neigh.Key{Port: p.out, IP6: p.nh6}
	}
	if e := w.r.neigh.LookupCached(&w.nc, k); e != nil {
		if mac, ok := e.MAC(); ok {
			copy(p.dstMAC(), mac[:])
			e.Touch()
			p.next = stageRewrite
			return
		}
	}
	p.buf[p.off-queuedPrefix] = byte(p.in)
	e, send, dropped := w.r.neigh.Resolve(k, w.now, p.buf[p.off-queuedPrefix:p.off+p.n])
	if dropped && e != nil && e.State() == neigh.Failed {
		// Resolution failed moments ago and is held down: tell the sender
		// now rather than queueing for another round of requests.
		w.neighborFailed(p)
		if p.next == stageOutput {
			// The error passed the stages before this one as it was built;
			// resolve its own next hop (it never loops: an error about
			// ferry's own packet is suppressed).
			w.resolve(p)
		}
		return
	}
	if dropped {
		w.ctr.ports[k.Port].drops[DropNeighborQueue].Add(1)
	}
	if e != nil && e.State() != neigh.Incomplete && e.State() != neigh.Failed {
		// A reply arrived between the lookup and Resolve: send it now.
		if mac, ok := e.MAC(); ok {
			copy(p.dstMAC(), mac[:])
			p.next = stageRewrite
			return
		}
	}
	p.next, p.drop = stageDone, DropNone
	if send {
		if k.V6() {
			w.sendNS(k.Port, k.IP6)
		} else {
			w.sendARPRequest(k.Port, k.IP)
		}
	}
}
