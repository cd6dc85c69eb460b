package dataplane

import (
	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/iface"
)

// TUN and TAP ports (iface/tun_linux.go). A TUN queue hands the pipeline
// each packet behind an Ethernet header of its own making and strips it on
// the way out, so every stage sees the same frames as on an AF_PACKET
// port. What differs is decided per port, here:
//
//   - l3 (TUN): a point-to-point link without a link layer. The neighbour
//     stage resolves nothing on it (neighbour.go), and ferry sends no ICMP
//     redirects there (there is no other host on the link to prefer).
//   - clampMSS (TUN by default, any port by config): the forward stage
//     clamps the MSS of TCP SYNs entering or leaving the port (mssclamp.go).
//   - gen: a TUN/TAP device deleted while ferry runs retires the port in
//     every worker (its queues fail); the control goroutine re-attaches
//     the queues when a device of that name exists again and bumps gen,
//     and each worker then takes the port back (worker.revive).

// openPort opens a port of the configured kind.
func openPort(ifc config.Interface, dp config.Dataplane) (iface.Link, error) {
	switch ifc.Kind {
	case "tun", "tap":
		return iface.OpenTUN(iface.TUNConfig{
			Name:   ifc.Name,
			TAP:    ifc.Kind == "tap",
			Queues: max(dp.Workers, 1),
			MTU:    ifc.MTU,
			Owner:  ifc.Owner,
			Group:  ifc.Group,
			MAC:    ifc.MAC,
		})
	}
	return openAFPacket(ifc, dp)
}

// initTUN sets the per-port flags of a TUN or TAP port (and the MSS clamp
// of any port).
func (p *port) initTUN(ifc config.Interface, l iface.Link) {
	if l3, ok := l.(iface.Layer3er); ok && l3.Layer3() {
		p.l3 = true
		p.sendRedirects = false
	}
	p.clampMSS = ifc.ClampMSS
	p.clampMSSTo = ifc.ClampMSSTo
}

// reattachPorts re-attaches the retired ports that can be (TUN, TAP)
// once their device exists again. The control goroutine calls it.
func (r *Router) reattachPorts() {
	for _, p := range r.ports {
		ra, ok := p.link.(iface.Reattacher)
		if !ok || !p.gone.Load() {
			continue
		}
		if err := ra.Reattach(); err != nil {
			continue // not back yet
		}
		p.gone.Store(false)
		p.up.Store(true)
		p.reattached.Add(1)
		p.gen.Add(1)
		r.log.Info("port re-attached", "port", p.name)
	}
}

// revive takes back the retired queues of ports the control goroutine has
// re-attached since. Called about once a second.
func (w *worker) revive() {
	for pi, dead := range w.dead {
		if dead && w.r.ports[pi].gen.Load() != w.deadGen[pi] {
			w.dead[pi] = false
			w.pfds[pi].Fd = int32(w.queues[pi].Fd())
		}
	}
}
