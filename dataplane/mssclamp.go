package dataplane

import "encoding/binary"

// MSS clamping, as nft's `tcp flags syn tcp option maxseg size set rt mtu`
// on a tunnel's ports: tunnels have small MTUs and many paths drop the
// ICMP that path MTU discovery needs, so a connection set up across a
// tunnel with the hosts' own MSS would stall on its first full segment.
//
// A forwarded TCP SYN (or SYN-ACK) that enters or leaves a port with
// clamp_mss has its MSS option lowered to the smaller MTU of its ingress
// and egress ports less 40 bytes (IPv4 and TCP headers; 60 for IPv6), or to
// the port's clamp_mss_to. Clamping both the SYN and the SYN-ACK keeps both
// directions' segments inside the tunnel. The forward stage calls in
// after the TTL (hop limit) is decremented.

const (
	tcpOptMSS = 2
	tcpFlgSYN = 0x02
)

// mssClamp clamps p's MSS if p is a TCP SYN crossing a clamping port.
func (w *worker) mssClamp(p *Packet) {
	in, out := w.r.ports[p.in], w.r.ports[p.out]
	if !in.clampMSS && !out.clampMSS {
		return
	}
	var tcp []byte
	hdrs := 40
	if p.flags&flagIPv6 != 0 {
		if p.proto != 6 {
			return
		}
		tcp, hdrs = p.buf[p.l4:p.off+p.n], 60
	} else {
		ip := p.buf[p.l3 : p.off+p.n]
		// Only the first fragment carries the TCP header.
		if ip[9] != 6 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return
		}
		tcp = ip[int(ip[0]&0xf)*4:]
	}
	mss := min(in.mtu, out.mtu) - hdrs
	for _, pt := range [2]*port{in, out} {
		if pt.clampMSS && pt.clampMSSTo > 0 {
			mss = min(mss, pt.clampMSSTo)
		}
	}
	clampMSS(tcp, uint16(max(mss, 0)), p.needsCsum())
}

// clampMSS lowers the MSS option of the TCP SYN segment tcp to mss if it
// is larger, and reports whether it did. The checksum is updated
// incrementally (RFC 1624) unless partial is set: then the checksum field
// holds only the pseudo-header's sum, and whoever completes the checksum
// (the kernel, the NIC) sums the segment as it now is. Anything that is
// not a well-formed SYN with an MSS option is left alone.
func clampMSS(tcp []byte, mss uint16, partial bool) bool {
	if len(tcp) < 20 || tcp[13]&tcpFlgSYN == 0 {
		return false
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || doff > len(tcp) {
		return false
	}
	for i := 20; i < doff; {
		switch kind := tcp[i]; kind {
		case 0: // end of option list
			return false
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= doff {
			return false
		}
		n := int(tcp[i+1])
		if n < 2 || i+n > doff {
			return false
		}
		if tcp[i] != tcpOptMSS || n != 4 {
			i += n
			continue
		}
		if binary.BigEndian.Uint16(tcp[i+2:]) <= mss {
			return false
		}
		// The value may start at an odd offset: update the (one or two)
		// 16-bit words of the segment it overlaps.
		lo, hi := (i+2)&^1, (i+4+1)&^1
		var old [3]uint16
		for k := lo; k < hi; k += 2 {
			old[(k-lo)/2] = binary.BigEndian.Uint16(tcp[k:])
		}
		binary.BigEndian.PutUint16(tcp[i+2:], mss)
		if !partial {
			cs := binary.BigEndian.Uint16(tcp[16:])
			for k := lo; k < hi; k += 2 {
				cs = csumUpdate16(cs, old[(k-lo)/2], binary.BigEndian.Uint16(tcp[k:]))
			}
			binary.BigEndian.PutUint16(tcp[16:], cs)
		}
		return true
	}
	return false
}
