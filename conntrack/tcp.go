package conntrack

// TCP states, as Linux's nf_conntrack_proto_tcp names and orders them.
type tcpState = uint8

const (
	tcpNone tcpState = iota
	tcpSynSent
	tcpSynRecv
	tcpEstablished
	tcpFinWait
	tcpCloseWait
	tcpLastAck
	tcpTimeWait
	tcpClose
	tcpSynSent2
	tcpNumStates

	tcpIgnore  = 0xfe // pseudo-state: pass the segment, change nothing
	tcpInvalid = 0xff // pseudo-state: the segment is invalid
)

var tcpStateNames = [tcpNumStates]string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
}

// Segment kinds, the rows of the state table.
const (
	segSyn = iota
	segSynAck
	segFin
	segAck
	segRst
	segNone
)

func tcpIndex(f uint8) uint8 {
	switch {
	case f&TCPRst != 0:
		return segRst
	case f&TCPSyn != 0 && f&TCPAck != 0:
		return segSynAck
	case f&TCPSyn != 0:
		return segSyn
	case f&TCPFin != 0:
		return segFin
	case f&TCPAck != 0:
		return segAck
	}
	return segNone
}

// tcpValidFlags rejects flag combinations no stack sends (Linux's
// tcp_valid_flags): PSH, ECE and CWR are ignored, URG allowed where data
// may be.
func tcpValidFlags(f uint8) bool {
	switch f &^ (TCPPsh | TCPEce | TCPCwr) {
	case TCPSyn, TCPSyn | TCPUrg, TCPSyn | TCPAck, TCPRst, TCPRst | TCPAck,
		TCPFin | TCPAck, TCPFin | TCPAck | TCPUrg, TCPAck, TCPAck | TCPUrg:
		return true
	}
	return false
}

// tcpTable[dir][segment][state] is the next state, the table of RFC 793
// as Linux tracks it from the middle (the package doc explains the
// choices). Columns: NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT
// CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE SYN_SENT2.
var tcpTable = [2][6][tcpNumStates]uint8{
	{ // original
		segSyn:    {sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2},
		segSynAck: {sIV, sIV, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		segFin:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		segAck:    {sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
		segRst:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		segNone:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
	{ // reply
		segSyn:    {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2},
		segSynAck: {sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
		segFin:    {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
		segAck:    {sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG},
		segRst:    {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
		segNone:   {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
	},
}

const (
	sNO, sSS, sSR, sES, sFW = tcpNone, tcpSynSent, tcpSynRecv, tcpEstablished, tcpFinWait
	sCW, sLA, sTW, sCL, sS2 = tcpCloseWait, tcpLastAck, tcpTimeWait, tcpClose, tcpSynSent2
	sIG, sIV                = tcpIgnore, tcpInvalid
)

// tcpMaxRetrans: after this many identical retransmissions the timeout
// drops to TCPMaxRetrans (nf_conntrack_tcp_max_retrans).
const tcpMaxRetrans = 3

// tcpStart sets up scratch for the first segment of a flow: a SYN, or with
// loose pickup any ACK. Anything else starts nothing (invalid).
func (t *Table) tcpStart(c *Conn, m *Meta, now int64) bool {
	idx := tcpIndex(m.Flags)
	c.state = tcpNone
	switch {
	case idx == segSyn:
		s := &c.tcp.seen[Original]
		s.end = segEnd(m)
		s.maxend = s.end
		s.maxwin = max(uint32(m.Window), 1)
		setOptions(s, m)
	case idx == segAck && t.loose:
		// Mid-stream: the window scale was never seen, so the windows
		// cannot be checked; both sides are liberal (as Linux).
		c.tcp.seen[0].flags = sideLiberal
		c.tcp.seen[1].flags = sideLiberal
	default:
		return false
	}
	return t.tcpPacket(c, m, Original, now) == vAccept
}

// segEnd is the sequence number after the segment: SYN and FIN count one.
func segEnd(m *Meta) uint32 {
	end := m.Seq + m.Payload
	if m.Flags&TCPSyn != 0 {
		end++
	}
	if m.Flags&TCPFin != 0 {
		end++
	}
	return end
}

func setOptions(s *tcpSide, m *Meta) {
	s.scale, s.flags = 0, s.flags&sideLiberal
	if m.HasWScale {
		s.scale = min(m.WScale, 14) // RFC 7323: larger is treated as 14
		s.flags |= sideWScale
	}
}

// tcpPacket moves an entry's TCP state for one segment (c.mu held).
func (t *Table) tcpPacket(c *Conn, m *Meta, dir Dir, now int64) verdict {
	tc := &c.tcp
	idx := tcpIndex(m.Flags)
	old := c.state
	next := tcpTable[dir][idx][old]
	skipWindow := false
	switch next {
	case sSS:
		if old >= tcpTimeWait {
			// A SYN in TIME_WAIT or CLOSE: a new flow on the same ports
			// (RFC 1122 4.2.2.13) when this one was closed or reset;
			// otherwise treat it as an out-of-sync SYN.
			if (tc.seen[0].flags|tc.seen[1].flags)&sideCloseInit != 0 ||
				(tc.lastDir == uint8(dir) && tc.lastIndex == segRst) {
				return vReopen
			}
			next = sIG
		}
	case sIV:
		return vInvalid
	case sCL:
		if idx == segRst && tc.lastDir != uint8(dir) && m.Ack == tc.lastEnd &&
			((c.status&stSeenReply != 0 && tc.lastIndex == segSyn) ||
				(c.status&stAssured == 0 && tc.lastIndex == segAck)) {
			// The RST answers the SYN or ACK we let through as
			// ignored: it acknowledges data our windows never saw.
			skipWindow = true
		}
	}
	if next == sIG {
		if idx == segSynAck && tc.lastIndex == segSyn && tc.lastDir != uint8(dir) && m.Ack == tc.lastEnd {
			// The SYN/ACK answers a SYN we ignored: client and server are
			// in sync, we are not. Restart from the ignored SYN.
			old, next = tcpSynSent, tcpSynRecv
			ld := tc.lastDir
			tc.seen[ld] = tcpSide{end: tc.lastEnd, maxend: tc.lastEnd,
				maxwin: max(uint32(tc.lastWin), 1), scale: tc.lastWScale, flags: tc.lastFlags}
			tc.seen[dir] = tcpSide{}
		} else {
			tc.lastIndex, tc.lastDir = idx, uint8(dir)
			tc.lastSeq, tc.lastEnd, tc.lastWin = m.Seq, segEnd(m), m.Window
			if idx == segSyn && dir == Original {
				var s tcpSide
				setOptions(&s, m)
				tc.lastWScale, tc.lastFlags = s.scale, s.flags&sideWScale
			}
			return vIgnore
		}
	}
	if !skipWindow && !t.inWindow(c, m, dir, idx) {
		return vInvalid
	}
	tc.lastIndex, tc.lastDir = idx, uint8(dir)
	c.state = next
	if old != next && next == tcpFinWait {
		tc.seen[dir].flags |= sideCloseInit
	}

	to := t.timeouts.tcp[next]
	switch {
	case tc.retrans >= tcpMaxRetrans && to > t.timeouts.retrans:
		to = t.timeouts.retrans
	case (tc.seen[0].flags|tc.seen[1].flags)&sideDataUnacked != 0 && to > t.timeouts.unack:
		to = t.timeouts.unack
	}
	if c.status&stSeenReply == 0 {
		if idx == segRst {
			// Refused before any answer: nothing to keep (Linux kills
			// the entry at once).
			c.deadline.Store(now)
			return vAccept
		}
		if next == tcpEstablished && to > t.timeouts.unack {
			// A flow picked up mid-stream that was never answered does
			// not get five days.
			to = t.timeouts.unack
		}
		if idx == segSyn && old == tcpSynSent && !c.pending {
			// A retransmitted SYN does not extend the entry's life.
			return vAccept
		}
	} else if c.status&stAssured == 0 && (old == tcpSynRecv || old == tcpEstablished) && next == tcpEstablished {
		c.status |= stAssured
	}
	c.deadline.Store(now + to)
	return vAccept
}

func after(a, b uint32) bool  { return int32(a-b) > 0 }
func before(a, b uint32) bool { return int32(a-b) < 0 }

// maxAckWindow is the lowest acceptable ACK below the receiver's end when
// the sender's window is smaller (Linux MAXACKWINCONST).
const maxAckWindow = 66000

// inWindow checks a segment against both sides' sequence spaces and, when
// it fits, advances them. It follows Linux's tcp_in_window, itself after
// Guido van Rooij's "Real Stateful TCP Packet Filtering in IP Filter" (the
// same bounds as OpenBSD pf's pf_tcp_track_full):
//
//	I.   seq <= sender.maxend                 (not beyond the offered window)
//	II.  seq+len >= sender.end - receiver.maxwin (not older than a window)
//	III. ack <= receiver.end                  (acks nothing unsent)
//	IV.  ack >= receiver.end - max(sender.maxwin, 66000)
//
// SACK blocks are not read: the ACK field bounds III and IV, which is more
// liberal than Linux when a SACK edge lies beyond the ACK.
func (t *Table) inWindow(c *Conn, m *Meta, dir Dir, idx uint8) bool {
	tc := &c.tcp
	snd, rcv := &tc.seen[dir], &tc.seen[1-dir]
	syn, ackSet, rst := m.Flags&TCPSyn != 0, m.Flags&TCPAck != 0, m.Flags&TCPRst != 0
	seq, ack := m.Seq, m.Ack
	win := uint32(m.Window)
	end := segEnd(m)

	if snd.maxwin == 0 {
		// First segment from this side.
		if syn {
			// SYN/ACK, or the reply side's SYN in a simultaneous open.
			snd.end, snd.maxend = end, end
			snd.maxwin = max(win, 1)
			setOptions(snd, m)
			// RFC 7323: scaling only when both sides offered it.
			if snd.flags&rcv.flags&sideWScale == 0 {
				snd.scale, rcv.scale = 0, 0
			}
			if !ackSet {
				return true
			}
		} else {
			// Mid-stream: take what this segment shows.
			snd.end = end
			win <<= snd.scale
			snd.maxwin = max(win, 1)
			snd.maxend = end + snd.maxwin
			if rcv.maxwin == 0 {
				rcv.end, rcv.maxend = ack, ack
			}
		}
	} else if ((c.state == tcpSynSent && dir == Original) || (c.state == tcpSynRecv && dir == Reply)) && after(end, snd.end) {
		// A new SYN (or SYN/ACK) with a higher ISN: the sender restarted
		// (RFC 793 allows it), follow it.
		snd.end, snd.maxend = end, end
		snd.maxwin = max(win, 1)
		setOptions(snd, m)
	}

	if !ackSet || (rst && ack == 0) {
		// No ACK to check (or a broken stack's RST with ACK 0).
		ack = rcv.end
	}
	if seq == end && (!rst || (seq == 0 && c.state == tcpSynSent)) {
		// No data: only the ACK is checked. RSTs are checked by their
		// sequence number, except the seq 0 answer to a SYN.
		seq, end = snd.end, snd.end
	}
	maxAck := max(snd.maxwin, maxAckWindow)
	ok := !after(seq, snd.maxend) &&
		after(end, snd.end-rcv.maxwin-1) &&
		!after(ack, rcv.end) &&
		after(ack, rcv.end-maxAck-1)
	if !ok {
		return t.liberal || snd.flags&sideLiberal != 0
	}
	if !syn {
		win <<= snd.scale
	}
	snd.maxwin = max(snd.maxwin, win)
	if after(end, snd.end) {
		snd.end = end
		snd.flags |= sideDataUnacked
	}
	if rcv.maxwin != 0 && after(end, snd.maxend) {
		rcv.maxwin += end - snd.maxend
	}
	if after(ack+win, rcv.maxend-1) {
		rcv.maxend = ack + win
		if win == 0 {
			rcv.maxend++
		}
	}
	if ack == rcv.end {
		rcv.flags &^= sideDataUnacked
	}
	if idx == segAck {
		// Retransmission: the same segment again in the same direction.
		if tc.lastDir == uint8(dir) && tc.lastSeq == seq && tc.lastEnd == end && tc.lastWin == m.Window {
			tc.retrans = min(tc.retrans+1, 255)
		} else {
			tc.lastSeq, tc.lastEnd, tc.lastWin = seq, end, m.Window
			tc.retrans = 0
		}
	}
	return true
}
