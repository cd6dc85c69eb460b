package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/ferry-router/ferry/fib"
)

// Status views are what ferryctl shows. They are snapshots built on request
// from counters the workers keep; building one never stops forwarding.

// InterfaceStatus is one row of `ferryctl show interfaces`.
type InterfaceStatus struct {
	Name      string            `json:"name"`
	Index     int               `json:"index"` // ferry's port index
	Kind      string            `json:"kind"`
	MAC       string            `json:"mac"`
	MTU       int               `json:"mtu"`
	Up        bool              `json:"up"`
	Addresses []string          `json:"addresses"`
	RxPackets uint64            `json:"rx_packets"`
	RxBytes   uint64            `json:"rx_bytes"`
	TxPackets uint64            `json:"tx_packets"`
	TxBytes   uint64            `json:"tx_bytes"`
	Drops     map[string]uint64 `json:"drops"` // reason -> count; only non-zero reasons
	IPv4      PortIPv4          `json:"ipv4"`
	// TUN/TAP: times the port was re-attached after its device was deleted
	// and re-created; whether it clamps the MSS of forwarded TCP SYNs.
	Reattached uint64 `json:"reattached,omitempty"`
	ClampMSS   bool   `json:"clamp_mss,omitempty"`
}

// PortIPv4 is a port's IPv4 settings, named as Linux's
// net.ipv4.conf.<dev>.* sysctls.
type PortIPv4 struct {
	RPFilter          int  `json:"rp_filter"` // 0 off, 1 strict, 2 loose
	SendRedirects     bool `json:"send_redirects"`
	AcceptSourceRoute bool `json:"accept_source_route"`
	BCForwarding      bool `json:"bc_forwarding"`
}

// RouteStatus is one row of `ferryctl show routes`.
type RouteStatus struct {
	Prefix string `json:"prefix"`
	Type   string `json:"type"` // unicast, local, connected, blackhole, unreachable, prohibit
	Via    string `json:"via,omitempty"`
	Dev    string `json:"dev,omitempty"`
	Metric uint32 `json:"metric"`
	Table  string `json:"table,omitempty"`
	Proto  string `json:"proto,omitempty"` // connected, local, static
	// Nexthops lists an ECMP route's members.
	Nexthops []NexthopStatus `json:"nexthops,omitempty"`
}

// NexthopStatus is one member of an ECMP route.
type NexthopStatus struct {
	Via    string `json:"via"`
	Dev    string `json:"dev"`
	Weight uint32 `json:"weight"`
}

// NeighborStatus is one row of `ferryctl show neighbors`.
type NeighborStatus struct {
	IP     string `json:"ip"`
	MAC    string `json:"mac,omitempty"`
	Dev    string `json:"dev"`
	State  string `json:"state"` // INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED, PERMANENT
	Queued int    `json:"queued"`
}

// WorkerStatus is one row of `ferryctl show stats`.
type WorkerStatus struct {
	ID        int               `json:"id"`
	Batches   uint64            `json:"batches"`   // non-empty batches processed
	Packets   uint64            `json:"packets"`   // frames received
	Forwarded uint64            `json:"forwarded"` // frames transmitted
	Local     uint64            `json:"local"`     // frames for ferry itself
	Drops     map[string]uint64 `json:"drops"`     // reason -> count, all ports
	Wakeups   uint64            `json:"wakeups"`   // returns from poll(2)
	AvgBatch  float64           `json:"avg_batch"` // packets per non-empty batch
	// Reassembly of fragments addressed to ferry: datagrams in progress,
	// the payload bytes they hold, and the worker's preallocated buffers.
	ReasmDatagrams int64 `json:"reasm_datagrams"`
	ReasmBytes     int64 `json:"reasm_bytes"`
	ReasmLimit     int   `json:"reasm_limit_bytes"`
}

// Status is the read side of a running router, as the control socket uses it.
type Status interface {
	Interfaces() []InterfaceStatus
	Routes() []RouteStatus
	Neighbors() []NeighborStatus
	Workers() []WorkerStatus
}

var _ Status = (*Router)(nil)

func (r *Router) allWorkers() []*worker {
	return append(r.workers[:len(r.workers):len(r.workers)], r.ctl)
}

// Interfaces sums every worker's counters per port.
func (r *Router) Interfaces() []InterfaceStatus {
	out := make([]InterfaceStatus, len(r.ports))
	for i, p := range r.ports {
		s := InterfaceStatus{
			Name: p.name, Index: i, Kind: p.kind, MTU: p.mtu, Up: p.up.Load(),
			MAC:   fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", p.mac[0], p.mac[1], p.mac[2], p.mac[3], p.mac[4], p.mac[5]),
			Drops: map[string]uint64{}, Reattached: p.reattached.Load(), ClampMSS: p.clampMSS,
			IPv4: PortIPv4{RPFilter: int(p.rpFilter), SendRedirects: p.sendRedirects,
				AcceptSourceRoute: p.acceptSourceRoute, BCForwarding: p.bcForwarding},
		}
		for _, a := range p.addrs {
			s.Addresses = append(s.Addresses, a.String())
		}
		for _, x := range p.v6.all {
			a := netip.PrefixFrom(netip.AddrFrom16(x.a), x.bits).String()
			switch {
			case x.off.Load():
				a += " dadfailed"
			case x.tentative.Load():
				a += " tentative"
			}
			s.Addresses = append(s.Addresses, a)
		}
		for _, w := range r.allWorkers() {
			pc := &w.ctr.ports[i]
			s.RxPackets += pc.rxPackets.Load()
			s.RxBytes += pc.rxBytes.Load()
			s.TxPackets += pc.txPackets.Load()
			s.TxBytes += pc.txBytes.Load()
			for d := range pc.drops {
				if v := pc.drops[d].Load(); v > 0 {
					s.Drops[Drop(d).String()] += v
				}
			}
		}
		out[i] = s
	}
	return out
}

// Routes lists table main.
func (r *Router) Routes() []RouteStatus {
	rows, _ := r.TableRoutes(fib.TableMain)
	return rows
}

// Neighbors lists the ARP table.
func (r *Router) Neighbors() []NeighborStatus {
	var out []NeighborStatus
	for _, n := range r.neigh.Snapshot() {
		s := NeighborStatus{
			IP:     n.Key.Addr().String(),
			State:  n.State.String(),
			Queued: n.Queued,
		}
		if n.HasMAC {
			s.MAC = fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", n.MAC[0], n.MAC[1], n.MAC[2], n.MAC[3], n.MAC[4], n.MAC[5])
		}
		if n.Key.Port >= 0 && n.Key.Port < len(r.ports) {
			s.Dev = r.ports[n.Key.Port].name
		}
		out = append(out, s)
	}
	return out
}

// Workers reports each worker's activity; the control goroutine's own
// pipeline is listed with id -1.
func (r *Router) Workers() []WorkerStatus {
	var out []WorkerStatus
	for _, w := range r.allWorkers() {
		c := w.ctr
		s := WorkerStatus{
			ID: w.id, Batches: c.batches.Load(), Packets: c.packets.Load(),
			Forwarded: c.forwarded.Load(), Local: c.local.Load(), Wakeups: c.wakeups.Load(),
			Drops:          map[string]uint64{},
			ReasmDatagrams: c.reasmDatagrams.Load(), ReasmBytes: c.reasmBytes.Load(),
			ReasmLimit: len(w.ra.slots) * reasmBufSize,
		}
		if s.Batches > 0 {
			s.AvgBatch = float64(s.Packets) / float64(s.Batches)
		}
		for i := range c.ports {
			for d := range c.ports[i].drops {
				if v := c.ports[i].drops[d].Load(); v > 0 {
					s.Drops[Drop(d).String()] += v
				}
			}
		}
		out = append(out, s)
	}
	return out
}
