package dataplane

import (
	"bufio"
	"compress/gzip"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ferry-router/ferry/config"
)

// The pipeline without I/O against the full Internet table: the cost a
// real table adds over BenchmarkPipelineForward's single route comes from
// lookups that miss the cache, so every batch carries destinations spread
// over the whole table. The frames never leave memory.

const fullTablePath = "../../shared/data/bgp-full-table-prefixes.txt.gz"

func loadFullTable(b *testing.B) []netip.Prefix {
	f, err := os.Open(fullTablePath)
	if err != nil {
		b.Skipf("full table not found (%v); it sits in the shared data folder beside the checkout", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var ps []netip.Prefix
	sc := bufio.NewScanner(gz)
	for sc.Scan() {
		if p, err := netip.ParsePrefix(strings.TrimSpace(sc.Text())); err == nil && p.Addr().Is4() {
			ps = append(ps, p)
		}
	}
	return ps
}

func BenchmarkPipelineForwardFullTable(b *testing.B) {
	ps := loadFullTable(b)
	g := newRig(b, nil)
	routes := make([]config.Route, len(ps))
	for i, p := range ps {
		routes[i] = config.Route{Prefix: p, Via: ipB, Dev: "r1", Table: config.TableMain}
	}
	if _, err := g.r.LoadRoutes(config.TableMain, routes); err != nil {
		b.Fatal(err)
	}
	// 256 batches of 64 frames, each to a random address inside a random
	// prefix of the table.
	rng := rand.New(rand.NewPCG(7, 7))
	const batches = 256
	frames := make([][]byte, 64*batches)
	for i := range frames {
		p := ps[rng.IntN(len(ps))]
		a := p.Addr().As4()
		host := rng.Uint32() >> p.Bits()
		if p.Bits() == 32 {
			host = 0
		}
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
		s := aToB(64, udpPayload(18))
		s.dst = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		frames[i] = append(make([]byte, 10), s.frame()...)
	}
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	b.ReportAllocs()
	b.ResetTimer()
	k := 0
	for i := 0; i < b.N; i += 64 {
		q.in = frames[k*64 : (k+1)*64]
		if k++; k == batches {
			k = 0
		}
		g.w.read()
		g.w.process()
	}
	b.StopTimer()
	if g.r.Interfaces()[1].TxPackets == 0 {
		b.Fatal("nothing forwarded")
	}
}

// BenchmarkPipelineForwardRecordRoute is BenchmarkPipelineForward with a
// Record Route option in every packet: what option processing costs the
// packets that carry options (packets without them skip it).
func BenchmarkPipelineForwardRecordRoute(b *testing.B) {
	g := newRig(b, nil)
	q := g.links[0].queues[0]
	q.keep = true
	g.links[1].queues[0].keep = true
	for i := 0; i < 64; i++ {
		s := aToB(64, udpPayload(18))
		s.options = []byte{0x07, 39, 4}
		s.options = append(s.options, make([]byte, 37)...)
		q.in = append(q.in, append(make([]byte, 10), s.frame()...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		g.w.read()
		g.w.process()
	}
}
