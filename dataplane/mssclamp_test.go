package dataplane

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// syn builds a TCP SYN whose options are opts, with a checksum valid for
// the pseudo-header sum pseudo.
func syn(opts []byte, pseudo uint16) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	tcp := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 0x12345678)
	tcp[12] = byte(len(tcp)/4) << 4
	tcp[13] = tcpFlgSYN
	copy(tcp[20:], opts)
	binary.BigEndian.PutUint16(tcp[16:], ^checksum.Checksum(tcp, pseudo))
	return tcp
}

func mssOf(tcp []byte) int {
	doff := int(tcp[12]>>4) * 4
	for i := 20; i+1 < doff && doff <= len(tcp); {
		switch tcp[i] {
		case 0:
			return -1
		case 1:
			i++
			continue
		}
		n := int(tcp[i+1])
		if n < 2 || i+n > doff {
			return -1
		}
		if tcp[i] == tcpOptMSS && n == 4 {
			return int(binary.BigEndian.Uint16(tcp[i+2:]))
		}
		i += n
	}
	return -1
}

func TestClampMSS(t *testing.T) {
	const pseudo = 0x1234
	mss1460 := []byte{2, 4, 0x05, 0xb4}
	for _, c := range []struct {
		name    string
		opts    []byte
		mss     uint16
		changed bool
		want    int
	}{
		{"aligned", append(append([]byte{}, mss1460...), 1, 1, 4, 2), 1340, true, 1340},
		{"odd offset", append([]byte{1}, mss1460...), 1340, true, 1340},
		{"after sack-permitted and timestamps", append([]byte{4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1}, mss1460...), 1000, true, 1000},
		{"already smaller", mss1460, 1500, false, 1460},
		{"no mss", []byte{1, 1, 4, 2}, 1000, false, -1},
		{"bad length", []byte{2, 0, 5, 0xb4}, 1000, false, -1},
		{"past end", []byte{1, 1, 1, 2}, 1000, false, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			tcp := syn(c.opts, pseudo)
			if got := clampMSS(tcp, c.mss, false); got != c.changed {
				t.Fatalf("changed %v, want %v", got, c.changed)
			}
			if c.want >= 0 && mssOf(tcp) != c.want {
				t.Errorf("mss %d, want %d", mssOf(tcp), c.want)
			}
			if checksum.Checksum(tcp, pseudo) != 0xffff {
				t.Errorf("checksum does not verify after the clamp")
			}
		})
	}
}

func TestClampMSSPartialLeavesChecksum(t *testing.T) {
	tcp := syn([]byte{2, 4, 0x05, 0xb4}, 0)
	binary.BigEndian.PutUint16(tcp[16:], 0xabcd) // a pseudo-header sum
	if !clampMSS(tcp, 1340, true) || mssOf(tcp) != 1340 {
		t.Fatal("not clamped")
	}
	if binary.BigEndian.Uint16(tcp[16:]) != 0xabcd {
		t.Error("partial checksum field was changed")
	}
}

func TestClampMSSOnlySYN(t *testing.T) {
	tcp := syn([]byte{2, 4, 0x05, 0xb4}, 0)
	tcp[13] = 0x10 // ACK
	if clampMSS(tcp, 1000, false) {
		t.Error("clamped a segment without SYN")
	}
}

// FuzzClampMSS: whatever the segment, the clamp never reads or writes out
// of bounds, never raises the MSS, and keeps a valid checksum valid.
func FuzzClampMSS(f *testing.F) {
	f.Add(syn([]byte{2, 4, 0x05, 0xb4}, 0), uint16(1340), uint16(0))
	f.Add(syn([]byte{1, 2, 4, 0x05, 0xb4}, 0), uint16(536), uint16(0x8000))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 2, 0, 0, 0, 0, 0, 0, 2, 4}, uint16(100), uint16(1))
	f.Fuzz(func(t *testing.T, tcp []byte, mss, pseudo uint16) {
		valid := len(tcp) >= 20
		if valid {
			binary.BigEndian.PutUint16(tcp[16:], 0)
			binary.BigEndian.PutUint16(tcp[16:], ^checksum.Checksum(tcp, pseudo))
		}
		before := -1
		if valid && int(tcp[12]>>4)*4 <= len(tcp) {
			before = mssOf(tcp)
		}
		changed := clampMSS(tcp, mss, false)
		if !changed {
			return
		}
		if got := mssOf(tcp); got != int(mss) || before <= int(mss) {
			t.Fatalf("mss %d -> %d, clamp %d", before, got, mss)
		}
		if checksum.Checksum(tcp, pseudo) != 0xffff {
			t.Fatal("checksum broken by the clamp")
		}
	})
}
