package dataplane

import (
	"encoding/binary"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// hdrWith builds a bare IPv4 header carrying opts (padded to 4 bytes).
func hdrWith(opts ...byte) header.IPv4 {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := make(header.IPv4, 20+len(opts))
	h[0] = 0x40 | byte(len(h)/4)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)))
	h[8], h[9] = 64, protoUDP
	copy(h[20:], opts)
	setHeaderChecksum(h)
	return h
}

const (
	egressAddr = 0xc6336401 // 198.51.100.1
	otherAddr  = 0xcb007101 // 203.0.113.1
	tsNow      = 12345678
)

func TestParseOptionsMalformed(t *testing.T) {
	tests := []struct {
		name string
		opts []byte
		bad  int // offset in the header of the byte at fault
	}{
		{"length zero", []byte{0x44, 0, 5, 0}, 20},
		{"length one", []byte{0x07, 1, 4, 0}, 20},
		{"length overruns the list", []byte{0x07, 11, 4, 0, 0, 0, 0, 0}, 20},
		{"lone type byte at the end", []byte{1, 1, 1, 0x07}, 23},
		{"record route too short", []byte{0x07, 2, 1, 0}, 21},
		{"record route pointer below 4", []byte{0x07, 7, 3, 0, 0, 0, 0, 1}, 22},
		{"record route pointer inside the last slot", []byte{0x07, 7, 5, 0, 0, 0, 0, 1}, 22},
		{"record route twice", []byte{0x07, 3, 4, 0x07, 3, 4, 0, 0}, 23},
		{"timestamp too short", []byte{0x44, 3, 5, 0}, 21},
		{"timestamp pointer below 5", []byte{0x44, 8, 4, 0, 0, 0, 0, 0}, 22},
		{"timestamp unknown flag", []byte{0x44, 8, 5, 2, 0, 0, 0, 0}, 23},
		{"timestamp with address, no room for one", []byte{0x44, 8, 5, 1, 0, 0, 0, 0}, 22},
		{"timestamp full and overflow at 15", []byte{0x44, 8, 9, 0xf0, 0, 0, 0, 0}, 23},
		{"source route too short", []byte{0x83, 2, 0, 0}, 21},
		{"source route pointer below 4", []byte{0x89, 7, 2, 1, 2, 3, 4, 0}, 22},
		{"two source routes", []byte{0x83, 3, 4, 0x89, 3, 4, 0, 0}, 23},
		{"router alert of length 3", []byte{0x94, 3, 0, 0}, 21},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, bad := parseOptions(hdrWith(tc.opts...)); bad != tc.bad {
				t.Errorf("bad = %d, want %d", bad, tc.bad)
			}
		})
	}
}

func TestRecordRoute(t *testing.T) {
	// Room for two addresses; the first already taken by the sender.
	h := hdrWith(0x07, 11, 8, 192, 0, 2, 2, 0, 0, 0, 0)
	o, bad := parseOptions(h)
	if bad != 0 || o.rr != 20 {
		t.Fatalf("parse: %+v bad %d", o, bad)
	}
	if !stampOptions(h, o, false, egressAddr, tsNow, nil) {
		t.Fatal("not changed")
	}
	if got := binary.BigEndian.Uint32(h[27:]); got != egressAddr || h[22] != 12 {
		t.Errorf("slot %#x pointer %d, want %#x and 12", got, h[22], uint32(egressAddr))
	}
	// Now full: left alone, and still well formed.
	o, bad = parseOptions(h)
	if bad != 0 || stampOptions(h, o, false, otherAddr, tsNow, nil) {
		t.Errorf("a full record route changed (bad %d)", bad)
	}
}

func TestTimestampOnly(t *testing.T) {
	h := hdrWith(0x44, 12, 5, 0x00, 0, 0, 0, 0, 0, 0, 0, 0)
	o, _ := parseOptions(h)
	stampOptions(h, o, false, egressAddr, tsNow, nil)
	if binary.BigEndian.Uint32(h[24:]) != tsNow || h[22] != 9 {
		t.Fatalf("first stamp: % x", h[20:32])
	}
	stampOptions(h, o, false, egressAddr, tsNow+1, nil)
	if binary.BigEndian.Uint32(h[28:]) != tsNow+1 || h[22] != 13 {
		t.Fatalf("second stamp: % x", h[20:32])
	}
	// Full: the overflow counter counts each further hop.
	stampOptions(h, o, false, egressAddr, tsNow+2, nil)
	if h[23]>>4 != 1 || h[22] != 13 {
		t.Fatalf("overflow: % x", h[20:32])
	}
}

func TestTimestampWithAddress(t *testing.T) {
	h := hdrWith(0x44, 20, 5, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	o, bad := parseOptions(h)
	if bad != 0 {
		t.Fatalf("bad %d", bad)
	}
	stampOptions(h, o, false, egressAddr, tsNow, nil)
	if binary.BigEndian.Uint32(h[24:]) != egressAddr || binary.BigEndian.Uint32(h[28:]) != tsNow || h[22] != 13 {
		t.Fatalf("stamp: % x", h[20:40])
	}
}

func TestTimestampPrespecified(t *testing.T) {
	// Two prespecified hops: someone else's, then ours.
	h := hdrWith(0x44, 20, 5, 0x03, 203, 0, 113, 1, 0, 0, 0, 0, 198, 51, 100, 1, 0, 0, 0, 0)
	ours := []uint32{egressAddr}
	o, _ := parseOptions(h)
	if stampOptions(h, o, false, egressAddr, tsNow, ours) {
		t.Fatalf("stamped a slot naming another router: % x", h[20:40])
	}
	h[22] = 13 // as if 203.0.113.1 had stamped
	setHeaderChecksum(h)
	o, _ = parseOptions(h)
	if !stampOptions(h, o, false, egressAddr, tsNow, ours) || binary.BigEndian.Uint32(h[36:]) != tsNow || h[22] != 21 {
		t.Fatalf("our slot: % x", h[20:40])
	}
}

func TestSourceRouteTaken(t *testing.T) {
	// LSRR: the packet is at its first listed hop; next 198.51.100.2.
	h := hdrWith(0x83, 7, 4, 198, 51, 100, 2)
	o, bad := parseOptions(h)
	if bad != 0 || o.srr != 20 || o.strict {
		t.Fatalf("parse %+v bad %d", o, bad)
	}
	if !takeSourceRoute(h, o) || h.DestinationAddress().String() != "198.51.100.2" || h[22] != 8 {
		t.Fatalf("take: dst %v % x", h.DestinationAddress(), h[20:28])
	}
	stampOptions(h, o, true, egressAddr, tsNow, nil)
	if binary.BigEndian.Uint32(h[23:]) != egressAddr {
		t.Errorf("slot after taking: % x", h[20:28])
	}
	if takeSourceRoute(h, o) {
		t.Error("took from a used-up route")
	}
}

func TestRouterAlertAndUnknownPass(t *testing.T) {
	h := hdrWith(0x94, 4, 0, 0, 0x1e, 4, 1, 2, 0x99, 3, 7)
	o, bad := parseOptions(h)
	if bad != 0 || !o.ra {
		t.Fatalf("parse %+v bad %d", o, bad)
	}
	before := append(header.IPv4(nil), h...)
	if stampOptions(h, o, false, egressAddr, tsNow, nil) || string(before) != string(h) {
		t.Error("router alert or unknown options changed")
	}
}

func TestMsSinceMidnight(t *testing.T) {
	tm := time.Date(2026, 12, 5, 1, 2, 3, 456e6, time.UTC)
	if got := msSinceMidnightUT(tm); got != ((1*60+2)*60+3)*1000+456 {
		t.Errorf("%d", got)
	}
}

// FuzzOptions: any option list is parsed, and if accepted, stamped and
// source-routed without a panic and stays well formed.
func FuzzOptions(f *testing.F) {
	f.Add([]byte{0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(egressAddr))
	f.Add([]byte{0x44, 12, 5, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(egressAddr))
	f.Add([]byte{0x44, 12, 5, 0x03, 198, 51, 100, 1, 0, 0, 0, 0}, uint32(egressAddr))
	f.Add([]byte{0x83, 7, 4, 198, 51, 100, 2, 0x94, 4, 0, 0}, uint32(otherAddr))
	f.Add([]byte{0x89, 11, 4, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0}, uint32(otherAddr))
	f.Fuzz(func(t *testing.T, opts []byte, egress uint32) {
		if len(opts) > 40 {
			opts = opts[:40]
		}
		h := hdrWith(opts...)
		o, bad := parseOptions(h)
		orig := append(header.IPv4(nil), h...)
		if bad != 0 {
			if bad < 20 || bad >= len(h) {
				t.Fatalf("pointer %d outside the options of a %d-byte header", bad, len(h))
			}
			return
		}
		for range 12 {
			if takeSourceRoute(h, o) {
				stampOptions(h, o, true, egress, tsNow, []uint32{egress})
			} else {
				stampOptions(h, o, false, egress, tsNow, []uint32{egress})
			}
			if _, again := parseOptions(h); again != 0 {
				// A hop may leave the list refused by the next one only
				// where Linux's would too: a pointer the sender set off
				// the slot grid now short of a whole slot, or a full
				// timestamp whose overflow counter reached 15.
				ok := (o.ts != 0 && (again == int(o.ts)+2 || again == int(o.ts)+3 && h[o.ts+3]>>4 == 15)) ||
					(o.rr != 0 && again == int(o.rr)+2) || (o.srr != 0 && again == int(o.srr)+2)
				if !ok {
					t.Fatalf("options became malformed (at %d): % x", again, h[20:])
				}
				break
			}
		}
		if string(h[:20]) != string(orig[:20]) && o.srr == 0 {
			t.Fatal("fixed header changed without a source route")
		}
		setHeaderChecksum(h)
		if checksum.Checksum(h, 0) != 0xffff {
			t.Fatal("checksum")
		}
	})
}
