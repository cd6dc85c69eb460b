package dataplane

import (
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/dataplane/neigh"
	"github.com/ferry-router/ferry/fib"
	"github.com/ferry-router/ferry/iface"
)

// bufSize fits the largest frame a ring hands over (a 64 KiB GSO frame with
// an Ethernet and a VLAN header) behind the headroom.
const bufSize = Headroom + 65536 + ethHdrLen + 4

// worker owns one queue of every port and everything its packets touch on
// the way through: buffers, batch vectors, counters and the ICMP rate
// limiter. Nothing here is shared with other workers, so the per-packet
// path takes no lock and allocates nothing.
type worker struct {
	id     int
	r      *Router
	queues []iface.Queue // by port index
	pfds   []unix.PollFd
	dead   []bool // queue failed (its link vanished); TUN/TAP come back (revive)
	// deadGen is the port's gen when its queue failed.
	deadGen []uint32

	rx      []Packet   // one per batch slot; buf is own[i] or a view Read handed out
	own     [][]byte   // the rx packets' own buffers, passed to every Read
	spare   []Packet   // fragments, ARP requests, frames released by ARP
	free    []int      // indexes of unused spares
	vec     []*Packet  // the batch being processed: rx packets, then spares
	bufs    [][]byte   // Read arguments
	sizes   []int      //
	txb     [][][]byte // Write arguments, by egress port
	dsts    []uint32   // route stage
	dsts6   []netip.Addr
	hops    []*fib.NextHop
	flows   []fib.Flow4 // route stage, when policy rules are in use
	hookVec []*Packet   // packets at the hook point being run

	now  time.Time
	poll pollMode
	ipID uint16
	rl   rateLimiter
	rd   redirectLimiter
	ra   reassembler
	nc   neigh.Cache // the neighbour stage's last lookup

	// Filter and connection tracking (filter.go, conntrack.go).
	rules *ruleset // the batch's ruleset (nil: none loaded)
	slot  int      // index of this worker's counters in a ruleset
	nowNS int64    // w.now on the tracker's clock
	meta  conntrack.Meta
	slots []ctSlot // one per rx and spare packet
	frags [fragSlots]fragMemo
	ctr   *workerCounters
	next  int // port to read first, rotated for fairness

	queueStats []iface.QueueStats // last seen, to publish deltas
}

func newWorker(r *Router, id int, queues []iface.Queue) *worker {
	b := r.batch
	w := &worker{
		id:         id,
		r:          r,
		queues:     queues,
		dead:       make([]bool, len(queues)),
		deadGen:    make([]uint32, len(queues)),
		rx:         make([]Packet, b),
		spare:      make([]Packet, b),
		free:       make([]int, 0, b),
		vec:        make([]*Packet, 0, 2*b),
		bufs:       make([][]byte, b),
		sizes:      make([]int, b),
		txb:        make([][][]byte, len(queues)),
		dsts:       make([]uint32, 2*b),
		dsts6:      make([]netip.Addr, 2*b),
		hops:       make([]*fib.NextHop, 2*b),
		flows:      make([]fib.Flow4, 2*b),
		hookVec:    make([]*Packet, 0, 2*b),
		ctr:        newWorkerCounters(len(queues)),
		queueStats: make([]iface.QueueStats, len(queues)),
		ipID:       uint16(id) << 12,
	}
	w.rl.init()
	w.ra.init(r.nWorkers, id)
	w.own = make([][]byte, b)
	w.slots = make([]ctSlot, 2*b)
	w.slot = id
	if id < 0 {
		w.slot = len(r.workers) // the control goroutine's counters come last
	}
	for i := range w.rx {
		w.own[i] = make([]byte, bufSize)
		w.rx[i].buf, w.rx[i].own = w.own[i], w.own[i]
		w.rx[i].cs = &w.slots[i]
	}
	for i := range w.spare {
		w.spare[i].cs = &w.slots[b+i]
		w.spare[i].buf = make([]byte, bufSize)
		w.spare[i].own = w.spare[i].buf
		w.spare[i].flags = flagSpare
		w.spare[i].spare = i
		w.free = append(w.free, i)
	}
	for i := range w.txb {
		w.txb[i] = make([][]byte, 0, 2*b)
	}
	for _, q := range queues {
		w.pfds = append(w.pfds, unix.PollFd{Fd: int32(q.Fd()), Events: unix.POLLIN})
	}
	return w
}

// run is the worker's loop: read a batch from every port, push it through
// the pipeline, and sleep in poll(2) only when every ring is empty. Under
// load it never sleeps; at idle a frame wakes it at once (TPACKET_V2 wakes
// per frame), which keeps ping latency in microseconds.
func (w *worker) run() {
	lastStats := time.Now()
	var lastFrame time.Time
	spins := 0
	// The clock is read once per batch, and once per 8 empty polls while
	// spinning: in this VM a clock read costs as much as forwarding a
	// quarter of a packet (perf: 9% of the core at two reads per batch).
	for !w.r.stopping.Load() {
		if w.read() == 0 {
			// Spin a little before sleeping: a reply to what was just sent
			// (the other half of a ping, a TCP ACK) usually arrives within
			// tens of microseconds, and a wake-up from poll(2) costs as much.
			if spins++; spins&7 != 0 && w.r.busyPoll > 0 {
				continue
			}
			w.now = time.Now()
			w.reasmIdle() // reassembly deadlines pass without traffic too
			if !w.poll.maySleep(w.now, lastFrame, w.r.busyPoll) {
				continue
			}
			w.wait(100 * time.Millisecond)
			w.now = time.Now()
		} else {
			spins = 0
			w.now = time.Now()
			w.poll.add(w.now, len(w.vec))
			lastFrame = w.now
			if w.r.ioOnly {
				w.xconnect()
			} else {
				w.process()
			}
		}
		if w.now.Sub(lastStats) > time.Second {
			w.publishQueueStats()
			w.revive()
			lastStats = w.now
		}
	}
	w.publishQueueStats()
}

// read fills the batch from the ports' RX rings, starting at a rotating
// port so that one busy port cannot starve the others. A queue may hand
// out a frame where it landed (a view of its RX slot, held until that
// queue's next Read, which comes after this batch is transmitted) instead
// of copying it into the packet's own buffer: the frame is then copied
// once in user space, into its TX slot.
func (w *worker) read() int {
	w.vec = w.vec[:0]
	copy(w.bufs, w.own)
	got := 0
	np := len(w.queues)
	for k := 0; k < np && got < len(w.rx); k++ {
		pi := (w.next + k) % np
		if w.dead[pi] {
			continue
		}
		n, err := w.queues[pi].Read(w.bufs[got:], w.sizes[got:], Headroom)
		if err != nil {
			w.queueFailed(pi)
			continue
		}
		var bytes uint64
		for i := got; i < got+n; i++ {
			p := &w.rx[i]
			p.buf = w.bufs[i]
			p.off, p.n, p.l3 = Headroom, w.sizes[i], Headroom+ethHdrLen
			p.in, p.out, p.nh, p.hop = pi, -1, 0, nil
			p.next, p.drop, p.flags, p.mark = stageInput, DropNone, 0, 0
			w.vec = append(w.vec, p)
			bytes += uint64(p.n)
		}
		if n > 0 {
			pc := &w.ctr.ports[pi]
			pc.rxPackets.Add(uint64(n))
			pc.rxBytes.Add(bytes)
		}
		got += n
	}
	w.next++
	return got
}

func (w *worker) wait(timeout time.Duration) {
	w.ctr.wakeups.Add(1)
	n, err := iface.Poll(w.pfds, timeout)
	if err != nil || n == 0 {
		return
	}
	for i := range w.pfds {
		re := w.pfds[i].Revents
		if re&unix.POLLNVAL != 0 {
			w.queueFailed(i)
		} else if re&unix.POLLERR != 0 {
			// The kernel reports a link going down (or away) as a socket
			// error; a ring socket never reads it, so clear it here or
			// poll would keep returning at once.
			unix.GetsockoptInt(int(w.pfds[i].Fd), unix.SOL_SOCKET, unix.SO_ERROR)
		}
	}
}

// queueFailed retires a queue whose socket is unusable so that the other
// ports keep forwarding.
func (w *worker) queueFailed(pi int) {
	if !w.dead[pi] {
		w.dead[pi] = true
		w.deadGen[pi] = w.r.ports[pi].gen.Load()
		w.pfds[pi].Fd = -1
		w.r.portFailed(pi)
	}
}

// takeSpare returns an unused spare packet, or nil when the pool is empty.
func (w *worker) takeSpare() *Packet {
	if len(w.free) == 0 {
		return nil
	}
	i := w.free[len(w.free)-1]
	w.free = w.free[:len(w.free)-1]
	p := &w.spare[i]
	p.off, p.n, p.l3 = Headroom, 0, Headroom+ethHdrLen
	p.in, p.out, p.nh, p.hop = -1, -1, 0, nil
	p.next, p.drop, p.flags, p.mark = stageDone, DropNone, flagSpare, 0
	return p
}

// finish counts what the batch dropped and returns spares to the pool.
func (w *worker) finish() {
	var packets uint64
	for _, p := range w.vec {
		w.forgetNew(p) // a new flow that never reached confirm
		if p.drop != DropNone {
			port := p.in
			if port < 0 {
				port = p.out
			}
			if port >= 0 {
				w.ctr.ports[port].drops[p.drop].Add(1)
			}
		}
		if p.flags&flagSpare != 0 {
			w.free = append(w.free, p.spare)
		} else {
			packets++
		}
	}
	w.ctr.batches.Add(1)
	w.ctr.packets.Add(packets)
}

// publishQueueStats folds the I/O layer's counters into the port counters.
func (w *worker) publishQueueStats() {
	for pi, q := range w.queues {
		if w.dead[pi] {
			continue
		}
		s := q.Stats()
		old := w.queueStats[pi]
		pc := &w.ctr.ports[pi]
		pc.drops[DropKernelRxRing].Add(s.KernelDrops - old.KernelDrops)
		pc.drops[DropTruncatedRx].Add(s.Truncated - old.Truncated)
		pc.drops[DropTunNotIP].Add(s.NotIP - old.NotIP)
		pc.drops[DropBadVnetHdr].Add(s.BadVnetHdr - old.BadVnetHdr)
		w.queueStats[pi] = s
	}
}

// workerCounters are written by one worker and read by the control socket.
// Atomic adds on counters no other core writes cost a few nanoseconds and
// keep the race detector honest; rx and tx are added once per batch.
type workerCounters struct {
	batches, packets, forwarded, local, wakeups atomic.Uint64
	reasmDatagrams, reasmBytes                  atomic.Int64 // fragments to ferry held now
	ports                                       []portCounters
}

type portCounters struct {
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	drops                                  [numDrops]atomic.Uint64
	_                                      [64]byte // keep ports on their own cache lines
}

func newWorkerCounters(ports int) *workerCounters {
	return &workerCounters{ports: make([]portCounters, ports)}
}
