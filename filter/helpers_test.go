package filter

import (
	"net/netip"
	"testing"
)

var testEnv = Env{Interfaces: map[string]int{"r0": 0, "r1": 1, "r2": 2, "eth0": 3, "eth1": 4}}

func mustLoad(t testing.TB, src string) *Program {
	t.Helper()
	p, err := Load("test.nft", src, testEnv)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, src)
	}
	return p
}

func ip16(t testing.TB, s string) [16]byte {
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a.As16()
}

// pkt4 is an IPv4 packet from r0 to r1, established, with ports.
func pkt4(t testing.TB, src, dst string, proto uint8, sport, dport uint16) Packet {
	return Packet{
		Family: 4, IIf: 0, OIf: 1, Src: ip16(t, src), Dst: ip16(t, dst),
		L4Proto: proto, SrcPort: sport, DstPort: dport, HasPorts: true,
		Length: 100, CtState: CtEstablished,
	}
}

func pkt6(t testing.TB, src, dst string, proto uint8, sport, dport uint16) Packet {
	p := pkt4(t, "192.0.2.1", "192.0.2.2", proto, sport, dport)
	p.Family, p.Src, p.Dst = 6, ip16(t, src), ip16(t, dst)
	return p
}

// chain wraps rules in an inet table's forward chain with a policy.
func chain(policy, rules string) string {
	return "table inet t {\n chain fwd {\n  type filter hook forward priority 0; policy " + policy + ";\n" + rules + "\n }\n}\n"
}
