package dataplane

import (
	"bytes"
	"testing"

	"github.com/ferry-router/ferry/config"
)

func TestIOOnlyCrossConnects(t *testing.T) {
	g := newRig(t, func(c *config.Config) {
		c.Dataplane.Mode = "io-only"
		c.Neighbors = c.Neighbors[1:] // only B, on r1
	})
	in := aToB(64, udpPayload(32)).frame()
	in[14+8] = 1 // TTL 1: the router would answer time exceeded; io-only does not look
	xrun := func(pi int, f []byte) {
		g.links[pi].queues[0].in = append(g.links[pi].queues[0].in, append(make([]byte, 10), f...))
		for g.w.read() > 0 {
			g.w.xconnect() // what the worker loop runs in io-only mode
		}
	}
	xrun(0, in)
	out := g.sent(1)
	if len(out) != 1 {
		t.Fatalf("sent %d frames on r1, want 1", len(out))
	}
	if !bytes.Equal(out[0][0:6], macB[:]) || !bytes.Equal(out[0][6:12], macR1[:]) || !bytes.Equal(out[0][12:], in[12:]) {
		t.Errorf("frame changed beyond its MACs")
	}
	xrun(1, in)
	if len(g.sent(0)) != 0 || g.drops(1)["xconnect_no_neighbor"] != 1 {
		t.Errorf("r1 -> r0 without a neighbour on r0: drops %v", g.drops(1))
	}
	q := g.links[0].queues[0]
	q.in = [][]byte{append(make([]byte, 10), in...)}
	q.keep = true
	g.links[1].queues[0].keep = true
	if a := testing.AllocsPerRun(100, func() {
		g.w.read()
		g.w.xconnect()
	}); a != 0 {
		t.Errorf("%.1f allocations per batch", a)
	}
}

func BenchmarkIOOnly(b *testing.B) {
	g := newRig(b, func(c *config.Config) { c.Dataplane.Mode = "io-only" })
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		q.in = append(q.in, append(make([]byte, 10), aToB(64, udpPayload(18)).frame()...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.xconnect()
	}
}
