package config

import (
	"net"
	"net/netip"
	"strconv"
)

// metrics checks [metrics] listen: an IP address (v6 in brackets) or an
// empty host (all addresses), and a port 1..65535.
func (c *checker) metrics(raw *rawFile, cfg *Config) {
	l := raw.Metrics.Listen
	if l == "" {
		return
	}
	cfg.Metrics = Metrics{Listen: l, Line: c.lines["metrics.listen"]}
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		c.bad("metrics.listen", "%q is not an address: want IP:PORT, e.g. \"127.0.0.1:9108\" or \"[2001:db8::1]:9108\"", l)
		return
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			c.bad("metrics.listen", "%q is not an IP address (names are not resolved)", host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.bad("metrics.listen", "port %q is out of range 1..65535", port)
	}
}
