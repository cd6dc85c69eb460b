package dataplane

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/ferry-router/ferry/config"
)

// newFilterRig is the two-port rig with rules loaded from a file.
func newFilterRig(t testing.TB, rules string) *rig {
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	g := newRig(t, func(c *config.Config) {
		c.Ruleset.File = f
		c.Conntrack = config.Conntrack{Max: 4096, TCPLoose: true}
	})
	g.w.now = time.Now() // the tracker's timeouts run on the worker's clock
	return g
}

func bToA(payload []byte) pktSpec {
	return pktSpec{srcMAC: macB, dstMAC: macR1, src: ipB, dst: ipA, proto: protoUDP, ttl: 64, payload: payload, id: 9}
}

// udpPorts builds a UDP header and payload with the given ports.
func udpPorts(sport, dport uint16, n int) []byte {
	p := udpPayload(n)
	binary.BigEndian.PutUint16(p[0:], sport)
	binary.BigEndian.PutUint16(p[2:], dport)
	return p
}

// tcpTo makes s a TCP segment (tcpSegment in ipv4req_test.go).
func tcpTo(s pktSpec, sport, dport uint16, seq, ack uint32, flags header.TCPFlags) pktSpec {
	s.proto, s.payload = protoTCP, tcpSegment(s.src, s.dst, sport, dport, seq, ack, flags, 0)
	return s
}

const statefulForward = `
table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid counter drop
		iifname "r0" udp dport 9 counter accept
		iifname "r0" tcp dport 22 accept
		iifname "r0" udp dport 7 reject
		iifname "r0" tcp dport 80 reject with tcp reset
		iifname "r0" icmp type echo-request accept
	}
}
`

func TestFilterStatefulForward(t *testing.T) {
	g := newFilterRig(t, statefulForward)
	g.run(0, aToB(64, udpPorts(40000, 9, 10)).frame())
	if n := len(g.sent(1)); n != 1 {
		t.Fatalf("allowed flow: %d frames forwarded, want 1", n)
	}
	// The reply is established; a new flow from B is not.
	g.run(1, bToA(udpPorts(9, 40000, 10)).frame())
	if n := len(g.sent(0)); n != 1 {
		t.Fatalf("reply: %d frames forwarded, want 1", n)
	}
	g.run(1, bToA(udpPorts(53, 40001, 10)).frame())
	if n := len(g.sent(0)); n != 0 {
		t.Fatalf("new flow from B: %d frames forwarded, want 0", n)
	}
	if d := g.drops(1)["filter_forward"]; d != 1 {
		t.Errorf("filter_forward on r1 = %d, want 1", d)
	}
	// A flow A starts to a port not allowed is dropped too.
	g.run(0, aToB(64, udpPorts(40000, 10, 10)).frame())
	if n := len(g.sent(1)); n != 0 {
		t.Errorf("udp 10: %d forwarded", n)
	}
	st := g.r.Conntrack(ConntrackFilter{})
	if st.Stats.UDP != 1 || st.Matched != 1 || !strings.Contains(st.Entries[0], "dport=9") {
		t.Errorf("conntrack: %+v", st)
	}
	rs, ok := g.r.Ruleset()
	if !ok || !strings.Contains(rs.Listing, `iifname "r0" udp dport 9 counter packets 1 bytes 38 accept`) {
		t.Errorf("listing:\n%s", rs.Listing)
	}
}

func TestFilterRelatedICMPError(t *testing.T) {
	g := newFilterRig(t, statefulForward)
	out := aToB(64, udpPorts(40000, 9, 10))
	g.run(0, out.frame())
	sent := g.sent(1)
	if len(sent) != 1 {
		t.Fatal("flow not forwarded")
	}
	// B answers with port unreachable quoting what it got.
	q := sent[0][14:]
	m := make([]byte, 8+len(q))
	m[0], m[1] = icmpDestUnreachable, icmpPortUnreachable
	copy(m[8:], q)
	binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))
	e := bToA(m)
	e.proto = protoICMP
	g.run(1, e.frame())
	if n := len(g.sent(0)); n != 1 {
		t.Fatalf("related ICMP error: %d forwarded, want 1", n)
	}
	// An error quoting a flow that does not exist is invalid.
	binary.BigEndian.PutUint16(m[8+20+2:], 4444)
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))
	g.run(1, e.frame())
	if n := len(g.sent(0)); n != 0 {
		t.Fatalf("unrelated ICMP error: %d forwarded, want 0", n)
	}
}

func TestFilterReject(t *testing.T) {
	g := newFilterRig(t, statefulForward)
	g.run(0, aToB(64, udpPorts(40000, 7, 10)).frame())
	got := g.sent(0)
	if len(got) != 1 {
		t.Fatalf("reject: %d frames back to A, want 1", len(got))
	}
	typ, code, src, _ := icmpErrorFrom(t, got[0])
	if typ != icmpDestUnreachable || code != icmpPortUnreachable || src != ipR0 {
		t.Errorf("reject sent type %d code %d from %v", typ, code, src)
	}
	if d := g.drops(0)["filter_reject"]; d != 1 {
		t.Errorf("filter_reject = %d", d)
	}

	g.run(0, tcpTo(aToB(64, nil), 40000, 80, 1000, 0, header.TCPFlagSyn).frame())
	got = g.sent(0)
	if len(got) != 1 {
		t.Fatalf("tcp reset: %d frames back to A, want 1", len(got))
	}
	ip := header.IPv4(checkIPv4(t, got[0]))
	seg := header.TCP(ip.Payload())
	if addr(ip.SourceAddressSlice()) != ipB || seg.Flags() != header.TCPFlagRst|header.TCPFlagAck || seg.SourcePort() != 80 || seg.AckNumber() != 1001 {
		t.Errorf("reset from %v flags %v sport %d ack %d", addr(ip.SourceAddressSlice()), seg.Flags(), seg.SourcePort(), seg.AckNumber())
	}
}

func TestFilterTCPHandshakeAndInvalid(t *testing.T) {
	g := newFilterRig(t, statefulForward)
	a := aToB(64, nil)
	b := bToA(nil)
	g.run(0, tcpTo(a, 40000, 22, 100, 0, header.TCPFlagSyn).frame())
	g.run(1, tcpTo(b, 22, 40000, 500, 101, header.TCPFlagSyn|header.TCPFlagAck).frame())
	g.run(0, tcpTo(a, 40000, 22, 101, 501, header.TCPFlagAck).frame())
	if n0, n1 := len(g.sent(0)), len(g.sent(1)); n0 != 1 || n1 != 2 {
		t.Fatalf("handshake: %d to A, %d to B, want 1 and 2", n0, n1)
	}
	st := g.r.Conntrack(ConntrackFilter{State: "ESTABLISHED"})
	if st.Matched != 1 {
		t.Errorf("established entries: %+v", st)
	}
	// Far outside the window: invalid, counted by the rule.
	// (A segment without data is judged by its ACK alone, as Linux does.)
	bad := b
	bad.proto, bad.payload = protoTCP, tcpSegment(b.src, b.dst, 22, 40000, 501+(1<<30), 101, header.TCPFlagAck, 10)
	g.run(1, bad.frame())
	if n := len(g.sent(0)); n != 0 {
		t.Errorf("out-of-window segment forwarded")
	}
	rs, _ := g.r.Ruleset()
	if !strings.Contains(rs.Listing, "ct state invalid counter packets 1") {
		t.Errorf("invalid not counted:\n%s", rs.Listing)
	}
}

func TestFilterInputChain(t *testing.T) {
	g := newFilterRig(t, `
table ip filter {
	chain input {
		type filter hook input priority 0; policy drop;
		icmp type echo-request accept
	}
}`)
	ping := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoICMP, ttl: 64, payload: echoRequest(8)}
	g.run(0, ping.frame())
	if n := len(g.sent(0)); n != 1 {
		t.Fatalf("echo: %d replies", n)
	}
	udp := ping
	udp.proto, udp.payload = protoUDP, udpPorts(40000, 33434, 8)
	g.run(0, udp.frame())
	if n := len(g.sent(0)); n != 0 {
		t.Fatalf("UDP to ferry answered (%d) despite the input policy", n)
	}
	if d := g.drops(0)["filter_input"]; d != 1 {
		t.Errorf("filter_input = %d", d)
	}
	// Forwarding is not the input chain's business.
	g.run(0, aToB(64, udpPorts(40000, 9, 10)).frame())
	if n := len(g.sent(1)); n != 1 {
		t.Errorf("forwarded %d", n)
	}
}

func TestFilterOutputAndReload(t *testing.T) {
	g := newFilterRig(t, `
table ip filter {
	chain output {
		type filter hook output priority 0; policy accept;
		icmp type echo-reply counter drop
	}
}`)
	ping := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoICMP, ttl: 64, payload: echoRequest(8)}
	g.run(0, ping.frame())
	if n := len(g.sent(0)); n != 0 {
		t.Fatalf("echo reply sent despite the output chain")
	}
	if d := g.drops(0)["filter_output"]; d != 1 {
		t.Errorf("filter_output = %d", d)
	}
	// A ruleset that does not compile leaves the running one in place.
	bad := filepath.Join(t.TempDir(), "bad.nft")
	os.WriteFile(bad, []byte("table ip x { chain c { type filter hook input priority 0; tcp dport 22 acept } }"), 0o644)
	err := g.r.LoadRuleset(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.nft:1:") {
		t.Fatalf("bad ruleset: %v", err)
	}
	g.run(0, ping.frame())
	if n := len(g.sent(0)); n != 0 {
		t.Fatalf("old ruleset lost after a failed reload")
	}
	if err := g.r.LoadRuleset(""); err != nil {
		t.Fatal(err)
	}
	g.run(0, ping.frame())
	if n := len(g.sent(0)); n != 1 {
		t.Fatalf("no ruleset: %d replies", n)
	}
}

func TestFilterLaterFragmentsFollowTheFirst(t *testing.T) {
	g := newFilterRig(t, statefulForward)
	first := aToB(64, udpPorts(40000, 9, 16))
	first.id = 77
	f1 := first.frame()
	ip := header.IPv4(f1[14:])
	ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	later := aToB(64, make([]byte, 16))
	later.id = 77
	f2 := later.frame()
	ip2 := header.IPv4(f2[14:])
	ip2.SetFlagsFragmentOffset(0, 24)
	ip2.SetChecksum(0)
	ip2.SetChecksum(^ip2.CalculateChecksum())
	g.run(0, f1, f2)
	if n := len(g.sent(1)); n != 2 {
		t.Fatalf("fragments of an allowed datagram: %d forwarded, want 2", n)
	}
	// A later fragment of a datagram whose first was never seen: invalid.
	later.id = 78
	g.run(0, later.frame())
	if n := len(g.sent(1)); n != 0 {
		t.Errorf("orphan fragment forwarded")
	}
}

// hundredRules is a ruleset the benchmark packet walks through: 99 UDP
// ports that do not match it and the rule that does.
func hundredRules() string {
	var b strings.Builder
	b.WriteString("table inet filter {\n chain forward {\n  type filter hook forward priority 0; policy drop;\n  ct state established,related accept\n")
	for i := range 98 {
		fmt.Fprintf(&b, "  udp dport %d drop\n", 1000+i)
	}
	b.WriteString("  udp dport 9 accept\n }\n}\n")
	return b.String()
}

func TestZeroAllocsPerPacketFiltered(t *testing.T) {
	g := newFilterRig(t, hundredRules())
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		s := aToB(64, udpPorts(uint16(20000+i), 9, 18))
		s.id = uint16(i)
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	g.w.read()
	g.w.process() // the first batch creates the flows and the table's slabs
	allocs := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.process()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 64 packets with 100 rules and conntrack, want 0", allocs)
	}
	if g.r.Interfaces()[1].TxPackets == 0 {
		t.Fatal("nothing forwarded")
	}
	if n := g.r.ct.Len(); n != 64 {
		t.Errorf("%d flows tracked, want 64", n)
	}
}

// BenchmarkPipelineForwardFiltered is BenchmarkPipelineForward with
// connection tracking and a 100-rule forward chain: 64 established flows.
func BenchmarkPipelineForwardFiltered(b *testing.B) {
	g := newFilterRig(b, hundredRules())
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB(64, udpPorts(uint16(20000+i), 9, 18)).frame()...))
	}
	g.w.read()
	g.w.process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}

// FuzzFilterStages sends arbitrary IP packets through connection tracking
// and every filter hook: nothing may panic, and the batch must finish.
func FuzzFilterStages(f *testing.F) {
	f.Add(false, aToB(64, udpPorts(40000, 9, 10)).frame()[14:])
	f.Add(false, tcpTo(aToB(64, nil), 40000, 80, 1, 0, header.TCPFlagSyn).frame()[14:])
	ping := pktSpec{srcMAC: macA, dstMAC: macR0, src: ipA, dst: ipR0, proto: protoICMP, ttl: 64, payload: echoRequest(8)}
	f.Add(false, ping.frame()[14:])
	f.Add(true, []byte{0x60, 0, 0, 0, 0, 8, 17, 64})
	g := newFilterRig(f, statefulForward+`
table inet host {
	chain input { type filter hook input priority 0; policy drop; ct state established,related accept; icmp type echo-request accept; tcp dport 22 reject with tcp reset; }
	chain output { type filter hook output priority 0; policy accept; ct state invalid counter; }
	chain post { type filter hook postrouting priority 0; policy accept; meta length > 1000 drop; }
}`)
	f.Fuzz(func(t *testing.T, v6 bool, ip []byte) {
		fr := make([]byte, 14+len(ip))
		copy(fr[0:6], macR0[:])
		copy(fr[6:12], macA[:])
		et := uint16(etherTypeIPv4)
		if v6 {
			et = etherTypeIPv6
		}
		binary.BigEndian.PutUint16(fr[12:], et)
		copy(fr[14:], ip)
		g.run(0, fr)
		g.sent(0)
		g.sent(1)
	})
}

func TestStatelessRulesetTracksNothing(t *testing.T) {
	g := newFilterRig(t, `table ip filter { chain forward { type filter hook forward priority 0; policy accept; udp dport 10 drop; } }`)
	g.run(0, aToB(64, udpPorts(40000, 9, 10)).frame(), aToB(64, udpPorts(40000, 10, 10)).frame())
	if n := len(g.sent(1)); n != 1 {
		t.Fatalf("%d forwarded, want 1", n)
	}
	if n := g.r.ct.Len(); n != 0 || g.r.Conntrack(ConntrackFilter{}).Active {
		t.Errorf("a stateless ruleset tracked %d flows", n)
	}
}

// BenchmarkPipelineForwardStateless is BenchmarkPipelineForward with the
// same 100 rules minus the ct state rule: the filter without tracking.
func BenchmarkPipelineForwardStateless(b *testing.B) {
	g := newFilterRig(b, strings.Replace(hundredRules(), "  ct state established,related accept\n", "", 1))
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB(64, udpPorts(uint16(20000+i), 9, 18)).frame()...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}
