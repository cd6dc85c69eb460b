package dataplane

import "gvisor.dev/gvisor/pkg/tcpip/checksum"

// csumUpdate16 returns the Internet checksum hc after one 16-bit word of the
// covered data changed from old to new, without re-reading the data:
// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'). This is the only incremental
// checksum rule in the dataplane; TTL decrement and NAT use it.
func csumUpdate16(hc, old, new uint16) uint16 {
	return ^checksum.Combine(checksum.Combine(^hc, ^old), new)
}
