package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/dataplane/neigh"
	"github.com/ferry-router/ferry/fib"
	"github.com/ferry-router/ferry/filter"
	"github.com/ferry-router/ferry/iface"
	"github.com/ferry-router/ferry/nat"
)

// Router is a running ferry: its ports, the tables the workers read, the
// workers themselves and the control goroutine that runs the neighbour
// timers and watches link state.
type Router struct {
	log   *slog.Logger
	ports []*port
	fib   *fib.FIB // table main, also what the route stage reads while no rules are added
	// policy holds every table and rule; policyActive says the route stage
	// must walk the rules (see routing.go).
	policy       *fib.Policy
	policyActive atomic.Bool
	hashSeed     uint32 // ECMP flow hash seed, per router as Linux's is per namespace
	// ours lists ferry's own addresses (Timestamp flag 3, ICMP sources).
	ours []uint32
	// rpFilterAny: some port has rp_filter set.
	rpFilterAny bool
	cfg         *config.Config
	ctlMu       sync.Mutex // serialises route and rule changes
	neigh       *neigh.Table
	hooks       Hooks
	batch       int
	// busyPoll: how long workers spin on empty rings before sleeping.
	busyPoll time.Duration
	// ioOnly: the benchmark floor, see config.Dataplane.Mode and ioonly.go.
	ioOnly bool
	xmac   [2][6]byte // io-only: destination MAC out of each port
	xok    [2]bool

	// The filter's compiled ruleset (nil: none) and the connection table
	// it and NAT share (filter.go, conntrack.go).
	ruleset      atomic.Pointer[ruleset]
	ct           *conntrack.Table
	nat          *nat.Table // source mappings (nat.go)
	natFiltering nat.Filtering
	epoch        time.Time // zero of the tracker's clock
	filterLog    chan filter.LogEvent

	workers  []*worker
	nWorkers int     // how many workers share the reassembly memory
	ctl      *worker // the control goroutine's own pipeline (ICMP for failed ARP)

	// IPv6 duplicate address detection, run by the control goroutine (ra.go).
	dadEnd  time.Time
	dadDone bool
	local6  []local6 // ferry's global IPv6 addresses (addr6.go)

	stopping atomic.Bool
	wg       sync.WaitGroup
	done     chan struct{}
}

// port is one interface as the workers see it. Everything but up is fixed
// while the router runs.
type port struct {
	idx   int
	name  string
	kind  string
	link  iface.Link
	mac   [6]byte
	mtu   int
	addrs []netip.Prefix // IPv4
	bcast []uint32       // directed broadcast addresses of addrs
	v6    *port6         // IPv6 addresses and router advertisements (addr6.go)
	up    atomic.Bool
	gone  atomic.Bool

	// The per-port IPv4 settings, as Linux's net.ipv4.conf.<dev>.* sysctls.
	acceptSourceRoute bool
	bcForwarding      bool
	sendRedirects     bool
	rpFilter          uint8 // 0 off, 1 strict, 2 loose

	// TUN and TAP (tunport.go)
	l3         bool          // no link layer: no neighbour resolution
	clampMSS   bool          // clamp the MSS of forwarded TCP SYNs through this port
	clampMSSTo int           // to this (0: from the MTUs)
	gen        atomic.Uint32 // bumped when the port is re-attached
	reattached atomic.Uint64
}

// Options adjust how a Router is built.
type Options struct {
	Log   *slog.Logger
	Hooks Hooks
	// OpenLink opens a port. Nil opens AF_PACKET sockets, TUN or TAP
	// devices, as configured; tests pass fakes.
	OpenLink func(ifc config.Interface, dp config.Dataplane) (iface.Link, error)
}

// New opens every configured port and builds the tables. Nothing is
// forwarded until Start.
func New(cfg *config.Config, opt Options) (*Router, error) {
	if len(cfg.Interfaces) > 255 {
		return nil, errors.New("ferry supports at most 255 interfaces")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.OpenLink == nil {
		opt.OpenLink = openPort
	}
	workers := max(cfg.Dataplane.Workers, 1)
	r := &Router{
		log:      opt.Log,
		fib:      fib.New(),
		neigh:    neigh.New(neigh.Config{}),
		hooks:    opt.Hooks,
		batch:    max(cfg.Dataplane.BatchSize, 1),
		busyPoll: cfg.Dataplane.BusyPoll,
		ioOnly:   cfg.Dataplane.Mode == "io-only",
		done:     make(chan struct{}),

		nat:          nat.New(nat.Config{MaxMappings: cfg.NAT.MaxMappings, Linger: natLinger}),
		natFiltering: natFiltering(cfg.NAT.Filtering),
		epoch:        time.Now(),
		filterLog:    make(chan filter.LogEvent, 256),
	}
	ctc := ctConfig(cfg.Conntrack)
	ctc.OnRemove = r.natRemoved
	r.ct = conntrack.New(ctc)
	for i, ifc := range cfg.Interfaces {
		l, err := opt.OpenLink(ifc, cfg.Dataplane)
		if err != nil {
			r.closeLinks()
			return nil, fmt.Errorf("interface %s: %w", ifc.Name, err)
		}
		if l.NumQueues() < workers {
			r.closeLinks()
			return nil, fmt.Errorf("interface %s: %d queues for %d workers", ifc.Name, l.NumQueues(), workers)
		}
		p := &port{idx: i, name: ifc.Name, kind: ifc.Kind, link: l, mtu: l.MTU(), addrs: ifc.Addresses,
			acceptSourceRoute: ifc.AcceptSourceRoute, bcForwarding: ifc.BCForwarding,
			sendRedirects: ifc.SendRedirects, rpFilter: uint8(ifc.RPFilter)}
		p.initTUN(ifc, l)
		copy(p.mac[:], l.MAC())
		if ifc.MAC != nil {
			copy(p.mac[:], ifc.MAC)
		}
		if ifc.MTU > 0 {
			p.mtu = ifc.MTU
		}
		p.v6, p.addrs = newPort6(p.mac, ifc)
		// newPort6 left only the IPv4 addresses in p.addrs.
		p.bcast = p.broadcasts()
		r.rpFilterAny = r.rpFilterAny || p.rpFilter != 0
		for _, a := range p.addrs {
			r.ours = append(r.ours, ip4(a.Addr()))
		}
		p.up.Store(l.Up())
		if t, ok := l.(iface.IngressTaker); ok && !ifc.KernelRx && t.TakeErr() != nil {
			slog.Warn("the kernel's stack still receives this port's frames too, costing CPU; set kernel_rx = true to silence this",
				"interface", ifc.Name, "err", t.TakeErr())
		}
		r.ports = append(r.ports, p)
	}
	if err := r.loadTables(cfg); err != nil {
		r.closeLinks()
		return nil, err
	}
	r.nWorkers = workers
	for id := 0; id < workers; id++ {
		qs := make([]iface.Queue, len(r.ports))
		for pi, p := range r.ports {
			qs[pi] = p.link.Queue(id)
		}
		r.workers = append(r.workers, newWorker(r, id, qs))
	}
	ctlQueues := make([]iface.Queue, len(r.ports))
	for pi, p := range r.ports {
		ctlQueues[pi] = controlQueue{p.link}
	}
	r.ctl = newWorker(r, -1, ctlQueues)
	if cfg.Ruleset.File != "" {
		if err := r.LoadRuleset(cfg.Ruleset.File); err != nil {
			r.closeLinks()
			return nil, err
		}
	}
	return r, nil
}

func openAFPacket(ifc config.Interface, dp config.Dataplane) (iface.Link, error) {
	return iface.OpenAFPacket(iface.AFPacketConfig{
		Name:       ifc.Name,
		Queues:     max(dp.Workers, 1),
		RingFrames: dp.RingFrames,
		FrameSize:  dp.FrameSize,
		Promisc:    true, // a configured MAC other than the link's must still be received
		// The kernel has no address on a port ferry owns: its own pass
		// over each frame would only cost the receiving CPU.
		TakeIngress: !ifc.KernelRx,
	})
}

// loadTables derives connected and local routes from the interface
// addresses, then adds the configured tables' routes, rules and static
// neighbours. Errors name the config line.
func (r *Router) loadTables(cfg *config.Config) error {
	r.initRouting(cfg)
	local := r.policy.Table(fib.TableLocal)
	for _, p := range r.ports {
		for _, a := range p.addrs {
			if err := r.fib.Add(fib.Route{Prefix: a.Masked(), Type: fib.Unicast, Dev: p.idx, Proto: "connected"}); err != nil {
				return fmt.Errorf("connected route %s dev %s: %w", a.Masked(), p.name, err)
			}
			lr := fib.Route{Prefix: netip.PrefixFrom(a.Addr(), 32), Type: fib.Local, Dev: p.idx, Proto: "local"}
			if err := r.fib.Add(lr); err != nil {
				return fmt.Errorf("local route %s dev %s: %w", a.Addr(), p.name, err)
			}
			if err := local.Add(lr); err != nil {
				return fmt.Errorf("local route %s dev %s: %w", a.Addr(), p.name, err)
			}
		}
	}
	if err := r.loadTables6(); err != nil {
		return err
	}
	for _, rt := range cfg.Routes {
		fr, err := r.fibRoute(rt, "static")
		if err == nil {
			err = r.policy.Table(rt.Table).Add(fr)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: route %s: %w", cfg.File, rt.Line, rt.Prefix, err)
		}
	}
	for _, cr := range cfg.Rules {
		if err := r.policy.AddRule(r.fibRule(cr)); err != nil {
			return fmt.Errorf("%s:%d: rule: %w", cfg.File, cr.Line, err)
		}
	}
	r.publishPolicy()
	if r.ioOnly {
		r.initXconnect(cfg)
	}
	for _, n := range cfg.Neighbors {
		pi := r.portIndex(n.Dev)
		if pi < 0 {
			return fmt.Errorf("%s:%d: neighbor %s: unknown dev %q", cfg.File, n.Line, n.IP, n.Dev)
		}
		k := neigh.Key{Port: pi}
		if n.IP.Is6() {
			k.IP6 = n.IP.As16()
		} else {
			k.IP = ip4(n.IP)
		}
		if err := r.neigh.AddStatic(k, [6]byte(n.MAC)); err != nil {
			return fmt.Errorf("%s:%d: neighbor %s: %w", cfg.File, n.Line, n.IP, err)
		}
	}
	return nil
}

func (r *Router) portIndex(name string) int {
	for _, p := range r.ports {
		if p.name == name {
			return p.idx
		}
	}
	return -1
}

func (r *Router) connectedPort(a netip.Addr) int {
	if a.Is6() {
		return r.connectedPort6(a)
	}
	for _, p := range r.ports {
		for _, pf := range p.addrs {
			if pf.Contains(a) {
				return p.idx
			}
		}
	}
	return -1
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Start launches the workers and the control goroutine. ferry's IPv6
// addresses stay tentative until duplicate address detection is over.
func (r *Router) Start() {
	r.markTentative()
	for _, w := range r.workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			w.run()
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.control()
	}()
}

// Stop asks every goroutine to finish its batch, waits for them and closes
// the ports.
func (r *Router) Stop() {
	if r.stopping.Swap(true) {
		return
	}
	close(r.done)
	r.wg.Wait()
	r.closeLinks()
}

func (r *Router) closeLinks() {
	for _, p := range r.ports {
		p.link.Close()
	}
}

// portFailed is called by a worker whose queue on port pi became unusable.
func (r *Router) portFailed(pi int) {
	p := r.ports[pi]
	if !p.gone.Swap(true) {
		p.up.Store(false)
		r.log.Warn("port failed; other ports keep forwarding", "port", p.name)
	}
}

// control runs the neighbour timers and refreshes link state. It is the
// only goroutine besides the workers that sends frames, through each
// link's control socket.
func (r *Router) control() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-r.done:
			return
		case now := <-tick.C:
			r.neighbourTimers(now)
			r.control6(now)
			r.writeFilterLogs()
			// Ten calls a second walk the whole table in 30 s at most;
			// lookups free what they meet expired in between.
			r.ct.Expire(r.nowNS(), max(1024, r.ct.Capacity()/300))
			r.nat.Expire(r.nowNS(), 4096)
			if n++; n%5 == 0 {
				r.refreshLinks() // for display and logs; transmit does not depend on it
				r.reattachPorts()
			}
		}
	}
}

func (r *Router) refreshLinks() {
	for _, p := range r.ports {
		if p.gone.Load() {
			continue
		}
		up := p.link.Up()
		if up != p.up.Load() {
			p.up.Store(up)
			r.log.Info("link state changed", "port", p.name, "up", up)
		}
	}
}

func (r *Router) neighbourTimers(now time.Time) {
	w := r.ctl
	w.now = now
	w.vec = w.vec[:0]
	var frame [arpMinFrame]byte
	for _, a := range r.neigh.Tick(now) {
		if a.Key.Port < 0 || a.Key.Port >= len(r.ports) {
			continue
		}
		p := r.ports[a.Key.Port]
		switch a.Kind {
		case neigh.SendBroadcastRequest, neigh.SendUnicastProbe:
			if a.Key.V6() {
				r.sendNS(p, a)
				continue
			}
			dst := broadcastMAC
			if a.Kind == neigh.SendUnicastProbe {
				dst = a.MAC
			}
			n := buildARP(frame[:], arpRequest, dst, p.mac, p.sourceFor(a.Key.IP), [6]byte{}, a.Key.IP)
			if err := p.link.SendControl(frame[:n]); err != nil {
				r.log.Debug("arp send failed", "port", p.name, "err", err)
			}
		case neigh.ResolveFailed:
			for _, q := range a.Frames {
				s := w.unpark(q)
				if s == nil {
					break
				}
				w.neighborFailed(s)
			}
		}
	}
	if len(w.vec) > 0 {
		w.process()
	}
}

// controlQueue lets the control goroutine's pipeline transmit through a
// link's control socket. Its frames are ferry's own (complete checksums, no
// GSO), so the virtio_net_hdr is simply left off.
type controlQueue struct{ l iface.Link }

func (c controlQueue) Read([][]byte, []int, int) (int, error) { return 0, nil }
func (c controlQueue) Fd() int                                { return -1 }
func (c controlQueue) Stats() iface.QueueStats                { return iface.QueueStats{} }
func (c controlQueue) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if err := c.l.SendControl(b[offset:]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

func (p *port) hasAddr(ip uint32) bool {
	for _, a := range p.addrs {
		if ip4(a.Addr()) == ip {
			return true
		}
	}
	return false
}

// sourceFor picks ferry's address on this port for talking to dst: the one
// whose network holds dst, else the first; 0 if the port has none.
func (p *port) sourceFor(dst uint32) uint32 {
	for _, a := range p.addrs {
		bits := a.Bits()
		mask := ^uint32(0) << (32 - bits)
		if bits == 0 || ip4(a.Addr())&mask == dst&mask {
			return ip4(a.Addr())
		}
	}
	if len(p.addrs) > 0 {
		return ip4(p.addrs[0].Addr())
	}
	return 0
}

// isBroadcast: the directed broadcast address of one of the port's networks.
func (p *port) isBroadcast(ip uint32) bool { return isOneOf(ip, p.bcast) }
