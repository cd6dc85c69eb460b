package dataplane

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/iface"
)

// fakeTUN is a fake layer-3 port: the pipeline must not resolve
// neighbours on it.
type fakeTUN struct{ *fakeLink }

func (fakeTUN) Layer3() bool { return true }

// tunRig: r0 as in newRig, r1 a TUN (MTU 1300, MSS clamp on) with no
// neighbours configured on it.
func tunRig(t *testing.T) *rig {
	var cfg config.Config
	g := newRig(t, func(c *config.Config) {
		c.Neighbors = c.Neighbors[:1]
		c.Interfaces[1].Kind = "tun"
		c.Interfaces[1].ClampMSS = true
		cfg = *c
	})
	// Re-open with r1 a fakeTUN: newRig's opener makes plain fakes.
	links := g.links
	open := func(ifc config.Interface, dp config.Dataplane) (iface.Link, error) {
		if ifc.Name == "r1" {
			return fakeTUN{links[1]}, nil
		}
		return links[0], nil
	}
	r, err := New(&cfg, Options{OpenLink: open})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, r: r, links: links, w: r.workers[0]}
}

// tcpSYN is a TCP SYN from A to B with an MSS option of 1460.
func tcpSYN() []byte {
	tcp := make([]byte, 24)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 6<<4, tcpFlgSYN
	copy(tcp[20:], []byte{tcpOptMSS, 4, 0x05, 0xb4})
	s := aToB(64, tcp)
	s.proto = protoTCP
	f := s.frame()
	ip := f[14:]
	pseudo := checksum.Combine(checksum.Checksum(ip[12:20], 0), uint16(protoTCP)+uint16(len(tcp)))
	binary.BigEndian.PutUint16(ip[20+16:], ^checksum.Checksum(ip[20:], pseudo))
	return f
}

func TestTUNPortForwardsWithoutARPAndClampsMSS(t *testing.T) {
	g := tunRig(t)
	g.run(0, tcpSYN())
	out := g.sent(1)
	if len(out) != 1 || binary.BigEndian.Uint16(out[0][12:]) != etherTypeIPv4 {
		t.Fatalf("want the SYN on the TUN without ARP, got %d frames; drops %v", len(out), g.drops(0))
	}
	ip := checkIPv4(t, out[0])
	tcp := ip[20:]
	if mss := binary.BigEndian.Uint16(tcp[22:]); mss != 1300-40 {
		t.Errorf("MSS %d, want %d", mss, 1300-40)
	}
	pseudo := checksum.Combine(checksum.Checksum(ip[12:20], 0), uint16(protoTCP)+uint16(len(tcp)))
	if checksum.Checksum(tcp, pseudo) != 0xffff {
		t.Error("TCP checksum broken by the clamp")
	}
	if st := g.r.Interfaces()[1]; !st.ClampMSS || st.IPv4.SendRedirects {
		t.Errorf("TUN port status %+v", st)
	}
}

func TestRetiredPortRevivedAfterReattach(t *testing.T) {
	g := tunRig(t)
	g.w.queueFailed(1)
	g.run(0, aToB(64, udpPayload(8)).frame())
	if len(g.sent(1)) != 0 || g.drops(0)["port_down"] != 1 {
		t.Fatalf("retired port: drops %v", g.drops(0))
	}
	g.w.revive()
	if !g.w.dead[1] {
		t.Fatal("revived without a re-attach")
	}
	g.r.ports[1].gen.Add(1) // what reattachPorts does
	g.w.revive()
	g.run(0, aToB(64, udpPayload(8)).frame())
	if len(g.sent(1)) != 1 {
		t.Fatalf("not forwarding after the re-attach; drops %v", g.drops(0))
	}
}
