package dataplane

// Directed broadcasts (RFC 1812 5.3.5.2, RFC 2644). route sends here a
// packet whose on-link destination is the broadcast address of the egress
// port's network. By default it is dropped, as Linux does with
// bc_forwarding = 0: it is never ARPed for (no neighbour owns that
// address) and never forwarded, so ferry is no smurf amplifier. With
// bc_forwarding on the ingress port (Linux reads the ingress device's
// setting too) it goes out as an Ethernet broadcast.
//
// Broadcasts to the ingress port's own networks and to 255.255.255.255 do
// not get this far: input drops them as broadcast_not_forwarded.

// directedBroadcast reports whether p may go on (addressed to the
// Ethernet broadcast address); otherwise it has been dropped.
func (w *worker) directedBroadcast(p *Packet) bool {
	if !w.r.ports[p.in].bcForwarding {
		p.Drop(DropDirectedBroadcast)
		return false
	}
	copy(p.dstMAC(), broadcastMAC[:])
	p.flags |= flagMACSet
	return true
}

// broadcasts lists the directed broadcast addresses of a port's networks
// (those of /30 and shorter: /31 and /32 have none, RFC 3021).
func (p *port) broadcasts() []uint32 {
	var out []uint32
	for _, a := range p.addrs {
		if bits := a.Bits(); bits <= 30 {
			host := ^uint32(0) >> bits
			out = append(out, ip4(a.Addr())|host)
		}
	}
	return out
}
