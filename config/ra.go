package config

import (
	"net/netip"
	"time"
)

// RA is what ferry advertises on a port in IPv6 router advertisements
// (RFC 4861 section 6.2.1; the defaults are radvd's and the RFC's).
type RA struct {
	MaxInterval time.Duration // MaxRtrAdvInterval: 4 s .. 1800 s (600 s)
	MinInterval time.Duration // MinRtrAdvInterval: 3 s .. 0.75 × max (0.33 × max)
	// Lifetime is the router lifetime, how long hosts keep ferry as a
	// default router: 0 (not a default router) or max interval .. 9000 s
	// (3 × max).
	Lifetime time.Duration
	HopLimit uint8 // Cur Hop Limit advertised to hosts (64; 0 = unspecified)
	// Prefixes are advertised on-link and autonomous (SLAAC). Default: the
	// networks of the port's global IPv6 addresses with 64-bit prefixes.
	Prefixes          []netip.Prefix
	ValidLifetime     time.Duration // per prefix (30 days)
	PreferredLifetime time.Duration // per prefix (7 days)
	// MTU, when not 0, is sent as the MTU option (RFC 4861 4.6.4).
	MTU int
	// RDNSS lists recursive DNS servers (RFC 8106), with their lifetime
	// (default 2 × max interval).
	RDNSS         []netip.Addr
	RDNSSLifetime time.Duration
}

type rawRA struct {
	MaxInterval       *int     `toml:"max_interval_s"`
	MinInterval       *int     `toml:"min_interval_s"`
	Lifetime          *int     `toml:"router_lifetime_s"`
	HopLimit          *int     `toml:"hop_limit"`
	Prefixes          []string `toml:"prefixes"`
	ValidLifetime     *int64   `toml:"valid_lifetime_s"`
	PreferredLifetime *int64   `toml:"preferred_lifetime_s"`
	MTU               int      `toml:"mtu"`
	RDNSS             []string `toml:"rdnss"`
	RDNSSLifetime     *int     `toml:"rdnss_lifetime_s"`
}

// ra checks an [interface.ra] table. ifc's addresses are already checked.
func (c *checker) ra(t string, r *rawRA, ifc Interface) *RA {
	sec := func(key string, v *int, def, lo, hi int) time.Duration {
		if v == nil {
			return time.Duration(def) * time.Second
		}
		if *v < lo || *v > hi {
			c.bad(t+"."+key, "%d is out of range %d..%d", *v, lo, hi)
		}
		return time.Duration(*v) * time.Second
	}
	ra := &RA{}
	ra.MaxInterval = sec("max_interval_s", r.MaxInterval, 600, 4, 1800)
	maxS := int(ra.MaxInterval / time.Second)
	ra.MinInterval = sec("min_interval_s", r.MinInterval, max(3, maxS/3), 3, max(3, maxS*3/4))
	ra.Lifetime = sec("router_lifetime_s", r.Lifetime, min(3*maxS, 9000), 0, 9000)
	if ra.Lifetime != 0 && ra.Lifetime < ra.MaxInterval {
		c.bad(t+".router_lifetime_s", "%d is below max_interval_s (%d): use 0 (not a default router) or at least the interval", int(ra.Lifetime/time.Second), maxS)
	}
	ra.HopLimit = uint8(sec("hop_limit", r.HopLimit, 64, 0, 255) / time.Second)
	life := func(key string, v *int64, def int64) time.Duration {
		if v == nil {
			return time.Duration(def) * time.Second
		}
		if *v < 0 || *v > 0xffffffff {
			c.bad(t+"."+key, "%d is out of range 0..4294967295", *v)
		}
		return time.Duration(*v) * time.Second
	}
	ra.ValidLifetime = life("valid_lifetime_s", r.ValidLifetime, 30*86400)
	ra.PreferredLifetime = life("preferred_lifetime_s", r.PreferredLifetime, 7*86400)
	if ra.PreferredLifetime > ra.ValidLifetime {
		c.bad(t+".preferred_lifetime_s", "exceeds valid_lifetime_s (RFC 4862 5.5.3 c: hosts ignore such a prefix)")
	}
	for _, s := range r.Prefixes {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "":
			c.bad(t+".prefixes", "%q is not an IPv6 prefix (like 2001:db8:1::/64)", s)
		case p != p.Masked():
			c.bad(t+".prefixes", "%s has host bits set; did you mean %s?", s, p.Masked())
		case p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast():
			c.bad(t+".prefixes", "%s is link-local or multicast: hosts cannot configure from it", s)
		default:
			ra.Prefixes = append(ra.Prefixes, p)
		}
	}
	if r.Prefixes == nil {
		for _, a := range ifc.Addresses {
			if a.Addr().Is6() && !a.Addr().IsLinkLocalUnicast() && a.Bits() == 64 {
				ra.Prefixes = append(ra.Prefixes, a.Masked())
			}
		}
	}
	if r.MTU != 0 && (r.MTU < 1280 || r.MTU > 65535) {
		c.bad(t+".mtu", "%d is out of range 1280..65535 (0 sends no MTU option)", r.MTU)
	}
	ra.MTU = r.MTU
	for _, s := range r.RDNSS {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsMulticast() || a.IsUnspecified() {
			c.bad(t+".rdnss", "%q is not a unicast IPv6 address", s)
			continue
		}
		ra.RDNSS = append(ra.RDNSS, a)
	}
	ra.RDNSSLifetime = sec("rdnss_lifetime_s", r.RDNSSLifetime, 2*maxS, 0, 1<<30)
	return ra
}

// badAddr6 says why p cannot be one of ferry's IPv6 addresses, or "".
func badAddr6(p netip.Prefix) string {
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return "has a zone: name the interface by where the address is listed"
	case a.Is4In6():
		return "is IPv4-mapped: write the IPv4 address"
	case a.IsMulticast() || a.IsUnspecified() || a.IsLoopback():
		return "is not a unicast address"
	case a.IsLinkLocalUnicast() && p.Bits() != 64:
		return "is link-local: its prefix is fe80::/64"
	}
	return ""
}
