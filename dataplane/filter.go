package dataplane

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/conntrack"
	"github.com/ferry-router/ferry/filter"
)

// The filter runs a compiled nftables ruleset (package filter) at the
// five netfilter hooks, where Linux runs them:
//
//	prerouting   every IP packet that came in, before the route lookup
//	input        packets to ferry, before the local stage answers them
//	forward      forwarded packets, after the TTL and MTU checks
//	output       ferry's own packets: echo replies, ICMP errors, resets
//	postrouting  every packet about to leave
//
// A drop is counted under the hook's reason (filter_forward, ...); a
// reject turns the packet into its answer in place (an ICMP error or a TCP
// reset), which then leaves as ferry's own packet through output.

// ruleset is a compiled program and each worker's counters for it. A
// reload builds a new one and swaps the router's pointer; a worker picks
// it up at its next batch.
type ruleset struct {
	prog *filter.Program
	ctr  []*filter.Counters // by worker; the last is the control goroutine's
	// track: some rule matches ct state or ct mark. A stateless ruleset
	// (none does) is evaluated without tracking, which costs a third of
	// the filtered pipeline.
	track  bool
	nat    bool // the ruleset has nat chains (nat.go)
	file   string
	loaded time.Time
}

var hookDrop = [filter.NumHooks]Drop{
	filter.HookPrerouting:  DropFilterPrerouting,
	filter.HookInput:       DropFilterInput,
	filter.HookForward:     DropFilterForward,
	filter.HookOutput:      DropFilterOutput,
	filter.HookPostrouting: DropFilterPostrouting,
}

// filterHook runs hook h over the packets waiting at stage s.
func (w *worker) filterHook(s stage, h filter.Hook) {
	if w.rules == nil {
		return
	}
	for _, p := range w.vec {
		if p.next == s {
			w.eval(p, h)
		}
	}
}

func (w *worker) eval(p *Packet, h filter.Hook) {
	fp := &p.cs.fp
	if fp.Family == 0 {
		return // not an IP packet the conntrack stage saw
	}
	if h >= filter.HookForward {
		fp.OIf = p.out
	}
	fp.Mark = p.mark
	res := w.rules.prog.Eval(h, fp, w.rules.ctr[w.slot], w.nowNS)
	if res.SetMark {
		p.mark = res.Mark
	}
	if res.SetCtMark && p.ct != nil {
		if p.flags&flagCtNew != 0 {
			p.ct.Mark = res.CtMark
		} else {
			w.r.ct.SetMark(p.ct, res.CtMark)
		}
	}
	switch res.Action {
	case filter.ActDrop:
		w.forgetNew(p)
		p.Drop(hookDrop[h])
	case filter.ActReject:
		w.forgetNew(p)
		w.reject(p, h, res.Reject)
	}
}

// reject answers a rejected packet as nft's reject statement does. A
// packet of ferry's own (output, postrouting) is only dropped: there is no
// local socket to tell.
func (w *worker) reject(p *Packet, h filter.Hook, kind filter.RejectKind) {
	if h == filter.HookOutput || h == filter.HookPostrouting || p.flags&flagLocalOrigin != 0 {
		p.Drop(DropFilterReject)
		return
	}
	if p.flags&flagIPv6 != 0 {
		code := icmp6PortUnreachable
		switch kind {
		case filter.RejectHostUnreachable:
			code = icmp6AddrUnreachable
		case filter.RejectAdminProhibited, filter.RejectTCPReset:
			// No TCP reset builder for IPv6 yet: the nearest answer that
			// ends the connection attempt at once.
			code = icmp6AdminProhibited
		case filter.RejectNetUnreachable:
			code = icmp6NoRoute
		}
		w.icmp6Error(p, icmp6DestUnreachable, code, 0, DropFilterReject)
		return
	}
	ip := header.IPv4(p.IP())
	if kind == filter.RejectTCPReset && p.cs.fp.L4Proto == protoTCP && p.cs.fp.HasPorts {
		w.tcpReset(p, ip, int(ip.HeaderLength()), DropFilterReject)
		return
	}
	code := byte(icmpPortUnreachable)
	switch kind {
	case filter.RejectHostUnreachable:
		code = icmpHostUnreachable
	case filter.RejectAdminProhibited:
		code = icmpAdminProhibited
	case filter.RejectNetUnreachable:
		code = icmpNetUnreachable
	}
	w.icmpError(p, icmpDestUnreachable, code, 0, DropFilterReject)
}

// localIn is the input hook: packets to ferry, before local answers them.
// A new flow to ferry is confirmed here, as Linux confirms at the end of
// LOCAL_IN.
func (w *worker) localIn() {
	for _, p := range w.vec {
		if p.next != stageLocalIn {
			continue
		}
		if w.rules != nil {
			w.eval(p, filter.HookInput)
			if p.next != stageLocalIn {
				continue
			}
			w.confirm(p)
			if p.next != stageLocalIn {
				continue
			}
		}
		p.next = stageLocal
	}
}

// output is the output hook for ferry's own packets (echo replies, ICMP
// errors, resets). They are tracked here, as Linux tracks at LOCAL_OUT; an
// error or reset ferry built about a flow it never confirmed (a packet it
// dropped or rejected) counts as related to it, as the kernel attaches its
// answers to the packet they answer.
func (w *worker) output() {
	for _, p := range w.vec {
		if p.next != stageOutput {
			continue
		}
		if w.rules != nil && p.flags&flagLocalOrigin != 0 {
			w.track(p)
			if fp := &p.cs.fp; fp.CtState == filter.CtInvalid && ownAnswer(fp) {
				fp.CtState = filter.CtRelated
			}
			w.eval(p, filter.HookOutput)
		}
		if p.next == stageOutput {
			p.next = stagePostrouting
		}
	}
}

// ownAnswer: an ICMP error or a TCP reset.
func ownAnswer(fp *filter.Packet) bool {
	switch fp.L4Proto {
	case protoICMP:
		return isICMPError(fp.ICMPType)
	case nhICMPv6:
		return fp.ICMPType < 128
	case protoTCP:
		return fp.TCPFlags&filter.TCPRst != 0
	}
	return false
}

// confirmAt confirms the new flows of the packets that reached stage s.
func (w *worker) confirmAt(s stage) {
	if w.rules == nil {
		return
	}
	for _, p := range w.vec {
		if p.next == s && p.flags&flagCtNew != 0 {
			w.confirm(p)
		}
	}
}

// Control side.

// filterEnv is what a ruleset is compiled against: the port names and the
// log sink.
func (r *Router) filterEnv() filter.Env {
	ports := make(map[string]int, len(r.ports))
	for _, p := range r.ports {
		ports[p.name] = p.idx
	}
	return filter.Env{Interfaces: ports, Log: r.logFilter}
}

// compileRuleset reads and compiles file. Errors name file:line:col.
func (r *Router) compileRuleset(file string) (*ruleset, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	prog, err := filter.Load(file, string(src), r.filterEnv())
	if err != nil {
		return nil, err
	}
	rs := &ruleset{prog: prog, file: file, loaded: time.Now(), track: prog.UsesConntrack() || prog.HasNAT(), nat: prog.HasNAT()}
	for range len(r.workers) + 1 {
		rs.ctr = append(rs.ctr, prog.NewCounters())
	}
	return rs, nil
}

// LoadRuleset compiles file and, when it compiles, puts it in place of the
// running ruleset; on error the running one stays. An empty file name
// removes the ruleset: everything is accepted and nothing is tracked.
// Connection tracking entries survive a reload.
func (r *Router) LoadRuleset(file string) error {
	if file == "" {
		r.ruleset.Store(nil)
		return nil
	}
	rs, err := r.compileRuleset(file)
	if err != nil {
		return err
	}
	r.ruleset.Store(rs)
	return nil
}

// CheckRuleset compiles file against the router's config without loading
// it (ferryd -check).
func CheckRuleset(cfg *config.Config) error {
	if cfg.Ruleset.File == "" {
		return nil
	}
	ports := map[string]int{}
	for i, ifc := range cfg.Interfaces {
		ports[ifc.Name] = i
	}
	src, err := os.ReadFile(cfg.Ruleset.File)
	if err != nil {
		return err
	}
	_, err = filter.Load(cfg.Ruleset.File, string(src), filter.Env{Interfaces: ports})
	return err
}

// RulesetStatus is `show ruleset`.
type RulesetStatus struct {
	File    string    `json:"file"`
	Loaded  time.Time `json:"loaded"`
	Listing string    `json:"listing"`
}

// Ruleset lists the running ruleset with its counters summed over the
// workers, as `nft list ruleset` prints it.
func (r *Router) Ruleset() (RulesetStatus, bool) {
	rs := r.ruleset.Load()
	if rs == nil {
		return RulesetStatus{}, false
	}
	return RulesetStatus{File: rs.file, Loaded: rs.loaded, Listing: rs.prog.Listing(rs.ctr...)}, true
}

// ResetRulesetCounters zeroes the counters the listing shows.
func (r *Router) ResetRulesetCounters() error {
	rs := r.ruleset.Load()
	if rs == nil {
		return errNoRuleset
	}
	rs.prog.ResetCounters(rs.ctr...)
	return nil
}

var errNoRuleset = fmt.Errorf("no ruleset is loaded ([ruleset] file in the config)")

// SetElements adds (add) or removes elements of a named set of the running
// ruleset, as `nft add element`. The change is lost on reload unless the
// file says so too.
func (r *Router) SetElements(add bool, set string, elems []string) error {
	rs := r.ruleset.Load()
	if rs == nil {
		return errNoRuleset
	}
	if add {
		return rs.prog.AddElements(set, elems)
	}
	return rs.prog.DelElements(set, elems)
}

// ConntrackStatus is `show conntrack`: the table's counters, a census by
// protocol and state, and the entries that pass the filters.
type ConntrackStatus struct {
	Active   bool            `json:"active"` // the ruleset matches ct state or mark: packets are being tracked
	Stats    conntrack.Stats `json:"stats"`
	Entries  []string        `json:"entries"` // as conntrack -L prints them
	Matched  int             `json:"matched"`
	Truncate bool            `json:"truncated"` // more matched than were listed
}

// ConntrackFilter selects entries, as conntrack -L's options do: any field
// left zero matches everything.
type ConntrackFilter struct {
	Proto uint8
	Addr  netip.Prefix // either address of either direction
	Port  uint16       // either port of either direction
	State string       // TCP state name (ESTABLISHED), or "assured", "unreplied"
	Limit int
}

// ParseConntrackFilter reads `proto tcp|udp|icmp|icmpv6 addr A[/N] port P
// state S limit N` in any order.
func ParseConntrackFilter(args []string) (ConntrackFilter, error) {
	f := ConntrackFilter{Limit: 1000}
	if len(args)%2 != 0 {
		return f, fmt.Errorf("usage: show conntrack [proto P] [addr A[/N]] [port N] [state S] [limit N]")
	}
	for i := 0; i < len(args); i += 2 {
		k, v := args[i], args[i+1]
		switch k {
		case "proto":
			switch v {
			case "tcp":
				f.Proto = protoTCP
			case "udp":
				f.Proto = protoUDP
			case "icmp":
				f.Proto = protoICMP
			case "icmpv6":
				f.Proto = nhICMPv6
			default:
				if _, err := fmt.Sscan(v, &f.Proto); err != nil || f.Proto == 0 {
					return f, fmt.Errorf("proto %q: want tcp, udp, icmp, icmpv6 or a number", v)
				}
			}
		case "addr", "src", "dst":
			pfx, err := netip.ParsePrefix(v)
			if err != nil {
				a, err2 := netip.ParseAddr(v)
				if err2 != nil {
					return f, fmt.Errorf("addr %q: not an address or prefix", v)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			f.Addr = pfx.Masked()
		case "port", "sport", "dport":
			if _, err := fmt.Sscan(v, &f.Port); err != nil || f.Port == 0 {
				return f, fmt.Errorf("port %q: want 1-65535", v)
			}
		case "state":
			f.State = strings.ToUpper(v)
		case "limit":
			if _, err := fmt.Sscan(v, &f.Limit); err != nil || f.Limit < 0 {
				return f, fmt.Errorf("limit %q: want a count", v)
			}
		default:
			return f, fmt.Errorf("unknown filter %q: want proto, addr, port, state or limit", k)
		}
	}
	return f, nil
}

func (f *ConntrackFilter) match(i conntrack.Info) bool {
	if f.Proto != 0 && i.Proto != f.Proto {
		return false
	}
	if f.Addr.IsValid() {
		hit := false
		for _, a := range []netip.Addr{i.Orig.SrcAddr(), i.Orig.DstAddr(), i.Reply.SrcAddr(), i.Reply.DstAddr()} {
			hit = hit || f.Addr.Contains(a)
		}
		if !hit {
			return false
		}
	}
	if f.Port != 0 && i.Proto != protoICMP && i.Proto != nhICMPv6 {
		if i.Orig.SrcPort != f.Port && i.Orig.DstPort != f.Port && i.Reply.SrcPort != f.Port && i.Reply.DstPort != f.Port {
			return false
		}
	}
	switch f.State {
	case "":
	case "ASSURED":
		return i.Assured
	case "UNREPLIED":
		return i.Unreplied
	default:
		return i.TCPState == f.State
	}
	return true
}

// Conntrack lists the connection table (conntrack -L) with its counters.
func (r *Router) Conntrack(f ConntrackFilter) ConntrackStatus {
	return r.listConntrack(f, false)
}

// listConntrack walks the table for Conntrack and NATSessions (natOnly:
// translated connections only).
func (r *Router) listConntrack(f ConntrackFilter, natOnly bool) ConntrackStatus {
	rs := r.ruleset.Load()
	st := ConntrackStatus{Active: rs != nil && rs.track, Stats: r.ct.Stats()}
	r.ct.Walk(r.nowNS(), func(i conntrack.Info) bool {
		if (natOnly && i.NAT == 0) || !f.match(i) {
			return true
		}
		st.Matched++
		if f.Limit == 0 || len(st.Entries) < f.Limit {
			st.Entries = append(st.Entries, i.String())
		} else {
			st.Truncate = true
		}
		return true
	})
	return st
}

// FlushConntrack empties the connection table (conntrack -F).
func (r *Router) FlushConntrack() { r.ct.Flush() }

// nowNS is the clock the tracker and the filter's limits run on.
func (r *Router) nowNS() int64 { return int64(time.Since(r.epoch)) }

// ctConfig turns [conntrack] into the tracker's config.
func ctConfig(c config.Conntrack) conntrack.Config {
	cc := conntrack.DefaultConfig()
	if c.Max > 0 {
		cc.Capacity = c.Max
	}
	cc.TCPLoose = c.TCPLoose
	t := &cc.Timeouts
	fields := map[string]*time.Duration{
		"tcp_timeout_syn_sent": &t.TCPSynSent, "tcp_timeout_syn_recv": &t.TCPSynRecv,
		"tcp_timeout_established": &t.TCPEstablished, "tcp_timeout_fin_wait": &t.TCPFinWait,
		"tcp_timeout_close_wait": &t.TCPCloseWait, "tcp_timeout_last_ack": &t.TCPLastAck,
		"tcp_timeout_time_wait": &t.TCPTimeWait, "tcp_timeout_close": &t.TCPClose,
		"tcp_timeout_unacknowledged": &t.TCPUnacknowledged, "udp_timeout": &t.UDP,
		"udp_timeout_stream": &t.UDPStream, "icmp_timeout": &t.ICMP, "generic_timeout": &t.Generic,
	}
	for k, d := range c.Timeouts {
		if f := fields[k]; f != nil {
			*f = d
		}
	}
	return cc
}

// logFilter hands a `log` statement's event to the control goroutine; it
// runs on the packet path and never blocks (the filter already rate-limits
// each statement; a full queue drops the event).
func (r *Router) logFilter(e filter.LogEvent) {
	select {
	case r.filterLog <- e:
	default:
	}
}

func (r *Router) writeFilterLogs() {
	for {
		select {
		case e := <-r.filterLog:
			fp := &e.Packet
			src, dst := addrOf(fp.Src, fp.Family), addrOf(fp.Dst, fp.Family)
			args := []any{"hook", e.Hook.String(), "chain", e.Chain, "src", src, "dst", dst, "proto", fp.L4Proto}
			if fp.HasPorts && (fp.L4Proto == protoTCP || fp.L4Proto == protoUDP) {
				args = append(args, "sport", fp.SrcPort, "dport", fp.DstPort)
			}
			if fp.IIf >= 0 && fp.IIf < len(r.ports) {
				args = append(args, "iif", r.ports[fp.IIf].name)
			}
			if fp.OIf >= 0 && fp.OIf < len(r.ports) {
				args = append(args, "oif", r.ports[fp.OIf].name)
			}
			if e.Suppressed > 0 {
				args = append(args, "suppressed", e.Suppressed)
			}
			r.log.Info("filter: "+e.Prefix, args...)
		default:
			return
		}
	}
}

func addrOf(a [16]byte, family uint8) netip.Addr {
	if family == 4 {
		return netip.AddrFrom16(a).Unmap()
	}
	return netip.AddrFrom16(a)
}
