package nat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// sums records which checksums of a packet verify, so FuzzRewrite can
// require that every one valid before is valid after.
type sums struct {
	ip, l4, partial bool // outer header; L4 (full); L4 field == pseudo-header sum
	qip, ql4        bool // quoted header; quoted L4 (complete quotes only)
}

// whole reports whether ip is a well-formed unfragmented packet whose
// total length fits: its L4 checksum can then be recomputed.
func whole(ip header.IPv4) bool {
	if len(ip) < header.IPv4MinimumSize || header.IPVersion(ip) != header.IPv4Version {
		return false
	}
	ihl, total := int(ip.HeaderLength()), int(ip.TotalLength())
	return ihl >= header.IPv4MinimumSize && total >= ihl && total <= len(ip) &&
		ip.FragmentOffset() == 0 && ip.Flags()&header.IPv4FlagMoreFragments == 0
}

func l4Min(proto uint8) int {
	switch proto {
	case ProtoTCP:
		return header.TCPMinimumSize
	case ProtoUDP:
		return header.UDPMinimumSize
	case ProtoICMP:
		return header.ICMPv4MinimumSize
	}
	return 1 << 30
}

// equalSum compares ones'-complement sums, where 0 and 0xffff are one value.
func equalSum(a, b uint16) bool {
	return a == b || (a == 0 || a == 0xffff) && (b == 0 || b == 0xffff)
}

func measure(ip header.IPv4) sums {
	var s sums
	if len(ip) < header.IPv4MinimumSize || int(ip.HeaderLength()) < header.IPv4MinimumSize || int(ip.HeaderLength()) > len(ip) {
		return s
	}
	s.ip = ipSumOK(ip)
	if !whole(ip) || len(ip.Payload()) < l4Min(ip.Protocol()) {
		return s
	}
	s.l4 = l4SumOK(ip)
	switch ip.Protocol() {
	case ProtoTCP, ProtoUDP:
		s.partial = equalSum(csumField(ip).get(), pseudo(ip, len(ip.Payload())))
	case ProtoICMP:
		q := quoteOf(ip)
		if len(q) >= header.IPv4MinimumSize && int(q.HeaderLength()) >= header.IPv4MinimumSize && int(q.HeaderLength()) <= len(q) {
			s.qip = ipSumOK(q)
			if whole(q) && int(q.TotalLength()) == len(q) && len(q.Payload()) >= l4Min(q.Protocol()) {
				s.ql4 = l4SumOK(q)
			}
		}
	}
	return s
}

// fix fills in every checksum measure can check, quote first.
func fix(ip header.IPv4) {
	if len(ip) < header.IPv4MinimumSize || int(ip.HeaderLength()) < header.IPv4MinimumSize || int(ip.HeaderLength()) > len(ip) {
		return
	}
	if whole(ip) && len(ip.Payload()) >= l4Min(ip.Protocol()) {
		if ip.Protocol() == ProtoICMP {
			q := quoteOf(ip)
			if len(q) >= header.IPv4MinimumSize && int(q.HeaderLength()) >= header.IPv4MinimumSize && int(q.HeaderLength()) <= len(q) {
				if whole(q) && int(q.TotalLength()) == len(q) && len(q.Payload()) >= l4Min(q.Protocol()) {
					fixL4(q)
				}
				q.SetChecksum(0)
				q.SetChecksum(^checksum.Checksum(q[:q.HeaderLength()], 0))
			}
		}
		fixL4(ip)
	}
	ip.SetChecksum(0)
	ip.SetChecksum(^checksum.Checksum(ip[:ip.HeaderLength()], 0))
}

// FuzzRewrite runs random packets through SetSource, SetDest,
// TranslateICMPError and TranslateICMPErrorDest: they never panic, and
// every checksum that was valid before is valid after (with fixSums the
// harness makes the input's checksums valid first). In partial mode the L4
// field must stay the pseudo-header sum.
func FuzzRewrite(f *testing.F) {
	router := [4]byte{203, 0, 113, 254}
	seeds := []header.IPv4{
		packet(ProtoTCP, inside, remote, tcpSeg(inside.Port, remote.Port, "data"), 0, false),
		packet(ProtoUDP, inside, remote, udpDgram(inside.Port, remote.Port, "data"), 0, false),
		packet(ProtoUDP, inside, remote, udpDgram(inside.Port, remote.Port, "nosum"), 0, true),
		packet(ProtoICMP, inside, remote, icmpMsg(header.ICMPv4Echo, 77, []byte("ping")), 0, false),
		packet(ProtoUDP, inside, remote, []byte("fragment"), 8, true),
	}
	for _, s := range seeds[:4] {
		o := header.IPv4(bytes.Clone(s))
		SetSource(o, o.Payload(), extEP, false)
		seeds = append(seeds, icmpError(router, o, 0), icmpError(router, o, 28))
	}
	for i, s := range seeds {
		for op := range 4 {
			f.Add([]byte(s), uint8(op), uint32(0xc6336401), uint16(6000+i), i%2 == 0, i%3 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, op uint8, addr uint32, port uint16, partial, fixSums bool) {
		ip := header.IPv4(bytes.Clone(data))
		if fixSums {
			fix(ip)
		}
		var e Endpoint
		binary.BigEndian.PutUint32(e.Addr[:], addr)
		e.Port = port
		before := measure(ip)
		in := bytes.Clone(ip)
		var l4 []byte
		if len(ip) >= header.IPv4MinimumSize && int(ip.HeaderLength()) <= len(ip) {
			l4 = ip[ip.HeaderLength():]
			if whole(ip) {
				l4 = ip.Payload()
			}
		}
		switch op % 4 {
		case 0:
			SetSource(ip, l4, e, partial)
		case 1:
			SetDest(ip, l4, e, partial)
		case 2:
			if !TranslateICMPError(ip, e.Addr, e) && !bytes.Equal(ip, in) {
				t.Fatal("refused, yet changed the packet")
			}
			partial = false
		case 3:
			if !TranslateICMPErrorDest(ip, e.Addr, e) && !bytes.Equal(ip, in) {
				t.Fatal("refused, yet changed the packet")
			}
			partial = false
		}
		after := measure(ip)
		if before.ip && !after.ip {
			t.Error("IP header checksum broken")
		}
		if !partial && before.l4 && !after.l4 {
			t.Error("L4 checksum broken")
		}
		if partial && before.partial && !after.partial {
			t.Error("partial L4 field no longer the pseudo-header sum")
		}
		if before.qip && !after.qip {
			t.Error("quoted IP header checksum broken")
		}
		if before.ql4 && !after.ql4 {
			t.Error("quoted L4 checksum broken")
		}
	})
}
