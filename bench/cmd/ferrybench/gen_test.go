package main

import "testing"

func TestGenAddrs(t *testing.T) {
	for _, c := range []struct {
		src, dst   string
		v6         bool
		wantSrc    string
		wantDst    string
		wantErrors bool
	}{
		{"", "", false, "192.0.2.2", "198.51.100.2", false},
		{"", "", true, "2001:db8:1::2", "2001:db8:2::3", false},
		{"", "198.51.100.3", false, "192.0.2.2", "198.51.100.3", false},
		// An IPv6 -dst chooses the family by itself.
		{"", "2001:db8:2::9", false, "2001:db8:1::2", "2001:db8:2::9", false},
		{"2001:db8:1::5", "2001:db8:ffff::1", false, "2001:db8:1::5", "2001:db8:ffff::1", false},
		{"192.0.2.2", "2001:db8:2::3", false, "", "", true},
		{"", "198.51.100.3", true, "", "", true},
		{"", "2001:db9::1", true, "", "", true},
		{"", "::ffff:198.51.100.3", false, "", "", true},
		{"", "fe80::1%eth0", false, "", "", true},
		{"10.0.0.1", "", false, "", "", true},
		{"", "8.8.8.8", false, "", "", true},
	} {
		s, d, err := genAddrs(c.src, c.dst, c.v6)
		if (err != nil) != c.wantErrors {
			t.Errorf("%q %q -6=%v: error %v", c.src, c.dst, c.v6, err)
			continue
		}
		if err == nil && (s.String() != c.wantSrc || d.String() != c.wantDst) {
			t.Errorf("%q %q -6=%v: %v -> %v, want %s -> %s", c.src, c.dst, c.v6, s, d, c.wantSrc, c.wantDst)
		}
	}
}
