package dataplane

import "github.com/ferry-router/ferry/config"

// io-only mode ([dataplane] mode = "io-only") is a benchmark floor, what
// VPP calls an L2 cross-connect: each frame received on one of the two
// ports leaves by the other, with its source MAC set to that port's and its
// destination to the port's first static neighbour. Nothing is parsed or
// checked, so the rings, the batch loop and transmit are all it costs: the
// difference to the router mode is the price of the pipeline.

func (r *Router) initXconnect(cfg *config.Config) {
	for _, n := range cfg.Neighbors {
		if pi := r.portIndex(n.Dev); pi == 0 || pi == 1 {
			if !r.xok[pi] {
				copy(r.xmac[pi][:], n.MAC)
				r.xok[pi] = true
			}
		}
	}
}

// xconnect sends every frame of the batch out of the other port.
func (w *worker) xconnect() {
	for _, p := range w.vec {
		out := 1 - p.in
		if !w.r.xok[out] {
			p.Drop(DropXconnectNoNeighbor)
			continue
		}
		f := p.buf[p.off:]
		copy(f[0:6], w.r.xmac[out][:])
		copy(f[6:12], w.r.ports[out].mac[:])
		p.out, p.next = out, stageTransmit
	}
	w.transmit()
	w.finish()
}
