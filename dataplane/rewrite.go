package dataplane

// rewrite sets the source MAC of every packet to its egress port's. The
// destination MAC was written by the neighbour stage and the TTL by
// forward, so the frame is ready to leave.
func (w *worker) rewrite() {
	for _, p := range w.vec {
		if p.next != stageRewrite {
			continue
		}
		copy(p.srcMAC(), w.r.ports[p.out].mac[:])
		p.next = stageTransmit
	}
}
