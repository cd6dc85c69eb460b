package dataplane

import "github.com/ferry-router/ferry/iface"

// transmit groups the batch by egress port and hands each group to its
// queue with one call, so the kernel is entered once per port per batch.
func (w *worker) transmit() {
	for i := range w.txb {
		w.txb[i] = w.txb[i][:0]
	}
	any := false
	for _, p := range w.vec {
		if p.next != stageTransmit {
			continue
		}
		p.next = stageDone
		// Only a queue known dead is skipped here. Whether a link is up is
		// the kernel's to say at send time (ENETDOWN): a cached flag lags,
		// and dropped the first packets after start-up while a veth came up.
		if w.dead[p.out] {
			p.drop = DropPortDown
			continue
		}
		w.txb[p.out] = append(w.txb[p.out], p.buf[p.off-iface.VnetHdrLen:p.off+p.n])
		any = true
	}
	if !any {
		return
	}
	for pi, frames := range w.txb {
		if len(frames) == 0 {
			continue
		}
		n, err := w.queues[pi].Write(frames, iface.VnetHdrLen)
		pc := &w.ctr.ports[pi]
		var bytes uint64
		for _, f := range frames[:n] {
			bytes += uint64(len(f) - iface.VnetHdrLen)
		}
		pc.txPackets.Add(uint64(n))
		pc.txBytes.Add(bytes)
		w.ctr.forwarded.Add(uint64(n))
		if lost := uint64(len(frames) - n); lost > 0 {
			reason := DropTxRingFull
			if err != nil {
				reason = DropPortDown
			}
			pc.drops[reason].Add(lost)
		}
	}
}
