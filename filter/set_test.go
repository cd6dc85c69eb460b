package filter

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

func randPrefixes(r *rand.Rand, n int, v6 bool) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		if v6 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:], 0x20010db800000000|r.Uint64()&0xffffffff)
			binary.BigEndian.PutUint64(b[8:], r.Uint64())
			out[i] = netip.PrefixFrom(netip.AddrFrom16(b), 48+r.IntN(81)).Masked()
		} else {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], r.Uint32())
			out[i] = netip.PrefixFrom(netip.AddrFrom4(b), 16+r.IntN(17)).Masked()
		}
	}
	return out
}

// TestSetMembershipAgainstBart: 100,000 random (nested, overlapping)
// prefixes, merged into intervals, answer as bart's prefix table does.
func TestSetMembershipAgainstBart(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		r := rand.New(rand.NewPCG(5, 6))
		pfx := randPrefixes(r, MaxSetElements, v6)
		var ref bart.Lite
		ivs := make([]ival, len(pfx))
		for i, p := range pfx {
			ref.Insert(p)
			ivs[i] = valueIval(Value{Prefix: p})
		}
		// Both lookup structures: intervals, and bart built from the
		// merged intervals split back into prefixes.
		for _, minBart := range []int{1 << 30, 0} {
			d := buildSetDataMin(ivs, v6, minBart)
			for i := 0; i < 100000; i++ {
				var a netip.Addr
				if i%2 == 0 { // near an element: its edges and inside
					p := pfx[r.IntN(len(pfx))]
					iv := valueIval(Value{Prefix: p})
					k := []u128{iv.lo, iv.hi, iv.hi.inc(), {iv.lo.hi, iv.lo.lo - 1}}[r.IntN(4)]
					if v6 {
						a = addr16(k)
					} else {
						a = netip.AddrFrom4([4]byte{byte(k.lo >> 24), byte(k.lo >> 16), byte(k.lo >> 8), byte(k.lo)})
					}
				} else if v6 {
					a = randPrefixes(r, 1, true)[0].Addr()
				} else {
					var b [4]byte
					binary.BigEndian.PutUint32(b[:], r.Uint32())
					a = netip.AddrFrom4(b)
				}
				b := a.As16()
				got := d.has4(&b)
				if v6 {
					got = d.has6(&b)
				}
				if want := ref.Lookup(a); got != want {
					t.Fatalf("v6=%v bart=%v %s: got %v, want %v", v6, d.lite != nil, a, got, want)
				}
			}
		}
	}
}

// TestToPrefixes: a range splits into aligned prefixes that tile it.
func TestToPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 20000; i++ {
		bits := 32
		a, b := uint64(r.Uint32()), uint64(r.Uint32())
		if i%3 == 0 {
			b = a + uint64(r.IntN(1000))
			if b > 0xffffffff {
				b = 0xffffffff
			}
		}
		if i == 0 {
			a, b = 0, 0xffffffff
		}
		lo, hi := min(a, b), max(a, b)
		next := lo
		toPrefixes(ival{u128{0, lo}, u128{0, hi}}, bits, func(p u128, plen int) {
			size := uint64(1) << (32 - plen)
			if p.lo != next || p.lo&(size-1) != 0 {
				t.Fatalf("[%d,%d]: prefix %d/%d, want start %d, aligned", lo, hi, p.lo, plen, next)
			}
			next = p.lo + size
		})
		if next != hi+1 {
			t.Fatalf("[%d,%d]: prefixes end at %d", lo, hi, next)
		}
	}
	// 128-bit: ::-::ffff:ffff:ffff:ffff:ffff is one /32's worth of halves.
	var got []string
	toPrefixes(ival{u128{0, 1}, u128{^uint64(0), ^uint64(0)}}, 128, func(p u128, plen int) {
		got = append(got, netip.PrefixFrom(addr16(p), plen).String())
	})
	if len(got) != 128 || got[0] != "::1/128" || got[127] != "8000::/1" {
		t.Fatalf("got %d prefixes: %v ... %v", len(got), got[0], got[len(got)-1])
	}
}

func TestMerge(t *testing.T) {
	iv := func(lo, hi uint64) ival { return ival{u128{0, lo}, u128{0, hi}} }
	got := merge([]ival{iv(10, 20), iv(0, 0), iv(21, 25), iv(15, 16), iv(30, 40), iv(1, 1), iv(39, 50)})
	want := []ival{iv(0, 1), iv(10, 25), iv(30, 50)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	top := u128{^uint64(0), ^uint64(0)}
	got = merge([]ival{{u128{1, 0}, top}, {u128{0, 5}, u128{0, ^uint64(0)}}})
	if len(got) != 1 || got[0].lo != (u128{0, 5}) || got[0].hi != top {
		t.Fatalf("128-bit merge: %v", got)
	}
}

const setRules = `table inet f {
  set trusted { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }
  set six { type ipv6_addr; flags interval; }
  set ports { type inet_service; flags interval; elements = { 22 } }
  set fixed { type ipv4_addr; flags constant; elements = { 192.0.2.1 } }
  set exact { type ipv4_addr; }
  chain fwd {
    type filter hook forward priority 0; policy drop;
    ip saddr @trusted tcp dport @ports accept
    ip6 saddr @six accept
    ip saddr @exact accept
  }
}
table ip other { set trusted { type ipv4_addr; } }
`

func TestSetAddDel(t *testing.T) {
	p := mustLoad(t, setRules)
	v := func(src string, port uint16) Action {
		pk := pkt4(t, src, "198.51.100.1", ProtoTCP, 1, port)
		return p.Eval(HookForward, &pk, nil, 0).Action
	}
	if v("192.0.2.5", 22) != ActAccept || v("198.51.100.5", 22) != ActDrop || v("192.0.2.5", 80) != ActDrop {
		t.Fatal("initial set")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.AddElements("inet f trusted", []string{"198.51.100.0/25", "192.0.2.0/26"}))
	must(p.AddElements("inet f ports", []string{"80", "8000-8100"}))
	if v("198.51.100.5", 22) != ActAccept || v("192.0.2.5", 8050) != ActAccept {
		t.Fatal("after add")
	}
	// Deleting the /24 leaves the /26 inside it.
	must(p.DelElements("inet f trusted", []string{"192.0.2.0/24"}))
	if v("192.0.2.5", 22) != ActAccept || v("192.0.2.100", 22) != ActDrop {
		t.Fatal("after delete of the covering prefix")
	}
	els, _ := p.SetElements("inet f trusted")
	if strings.Join(els, " ") != "198.51.100.0/25 192.0.2.0/26" {
		t.Fatalf("elements %v", els)
	}
	if l := p.Listing(); !strings.Contains(l, "elements = { 198.51.100.0/25, 192.0.2.0/26 }") {
		t.Fatalf("listing:\n%s", l)
	}
	must(p.AddElements("six", []string{"2001:db8::/32"}))
	pk := pkt6(t, "2001:db8::9", "2001:db8::1", ProtoUDP, 1, 2)
	if p.Eval(HookForward, &pk, nil, 0).Action != ActAccept {
		t.Fatal("ipv6 set")
	}
	must(p.AddElements("exact", []string{"203.0.113.9"}))
	if v("203.0.113.9", 1) != ActAccept {
		t.Fatal("exact set")
	}

	errs := []struct {
		set   string
		elems []string
		want  string
	}{
		{"nope", []string{"1.2.3.4"}, `unknown set "nope"`},
		{"trusted", []string{"192.0.2.1"}, `set "trusted" is in more than one table: name it "family table set"`},
		{"fixed", []string{"192.0.2.2"}, `set fixed is constant`},
		{"exact", []string{"192.0.2.0/24"}, "set exact: element 192.0.2.0/24 is a prefix or range: the set needs `flags interval`"},
		{"inet f trusted", []string{"2001:db8::1"}, `set trusted: ip saddr needs an IPv4 address, got 2001:db8::1`},
		{"inet f ports", []string{"70000"}, `set ports: th dport: bad value "70000" (a number up to 65535)`},
	}
	for _, e := range errs {
		if err := p.AddElements(e.set, e.elems); err == nil || err.Error() != e.want {
			t.Errorf("add %s %v: got %v, want %s", e.set, e.elems, err, e.want)
		}
	}
	if err := p.DelElements("inet f trusted", []string{"198.51.100.0/25", "203.0.113.0/24"}); err == nil ||
		err.Error() != "set trusted: element 203.0.113.0/24 is not in the set" {
		t.Errorf("del missing: %v", err)
	}
	if els, _ := p.SetElements("inet f trusted"); len(els) != 2 {
		t.Errorf("a failed delete changed the set: %v", els)
	}
}

func TestSetAddTooMany(t *testing.T) {
	p := mustLoad(t, setRules)
	elems := make([]string, MaxSetElements)
	for i := range elems {
		elems[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
	}
	err := p.AddElements("inet f trusted", elems)
	if err == nil || err.Error() != "set trusted: 100001 elements exceeds 100000" {
		t.Fatalf("got %v", err)
	}
	if err := p.AddElements("inet f trusted", elems[1:]); err != nil {
		t.Fatal(err)
	}
	pk := pkt4(t, "10.1.134.159", "198.51.100.1", ProtoTCP, 1, 22)
	if p.Eval(HookForward, &pk, nil, 0).Action != ActAccept {
		t.Fatal("member of a 100,000-element set")
	}
}

// TestSetSwapConcurrent: readers see the old or the new set, never a
// mix: 192.0.2.1 is in both versions, so it must always match.
func TestSetSwapConcurrent(t *testing.T) {
	p := mustLoad(t, setRules)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Once
	failed := false
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pk := pkt4(t, "192.0.2.1", "198.51.100.1", ProtoTCP, 1, 22)
			ctr := p.NewCounters()
			for i := 0; i < 1e6; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := pk
				if p.Eval(HookForward, &q, ctr, 0).Action != ActAccept {
					bad.Do(func() { failed = true })
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		e := []string{fmt.Sprintf("203.0.113.%d", i%256), "192.0.2.0/30"}
		if err := p.AddElements("inet f trusted", e); err != nil {
			t.Fatal(err)
		}
		if err := p.DelElements("inet f trusted", e); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if failed {
		t.Fatal("a reader missed an element present in every version")
	}
}

func BenchmarkSetLookup(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		r := rand.New(rand.NewPCG(7, 8))
		pfx := randPrefixes(r, MaxSetElements, v6)
		var lite bart.Lite
		ivs := make([]ival, len(pfx))
		for i, p := range pfx {
			lite.Insert(p)
			ivs[i] = valueIval(Value{Prefix: p})
		}
		d := buildSetData(ivs, v6)
		addrs := make([][16]byte, 4096)
		nas := make([]netip.Addr, len(addrs))
		for i := range addrs {
			a := pfx[r.IntN(len(pfx))].Addr()
			if !v6 {
				a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			}
			addrs[i], nas[i] = a.As16(), a
		}
		fam := map[bool]string{false: "v4", true: "v6"}[v6]
		b.Run(fam+"/intervals", func(b *testing.B) {
			n := 0
			for i := 0; i < b.N; i++ {
				a := &addrs[i&4095]
				if v6 {
					if d.v128.contains(keyOf(a)) {
						n++
					}
				} else if d.v32.contains(binary.BigEndian.Uint32(a[12:])) {
					n++
				}
			}
			_ = n
		})
		b.Run(fam+"/set", func(b *testing.B) { // what Eval uses: bart above bartMin intervals
			n := 0
			for i := 0; i < b.N; i++ {
				a := &addrs[i&4095]
				if v6 && d.has6(a) || !v6 && d.has4(a) {
					n++
				}
			}
			_ = n
		})
		b.Run(fam+"/bart", func(b *testing.B) {
			n := 0
			for i := 0; i < b.N; i++ {
				if lite.Lookup(nas[i&4095]) {
					n++
				}
			}
			_ = n
		})
		b.Run(fam+"/rebuild", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buildSetData(ivs, v6)
			}
		})
	}
}
