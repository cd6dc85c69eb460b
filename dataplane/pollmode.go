package dataplane

import "time"

// Under load a sleep costs more than it saves. Waking a worker from
// poll(2) takes tens of µs on a VM and, now and then, over a millisecond,
// while a 256-slot RX ring holds under a millisecond of traffic at a few
// hundred kpps. A paced 288 kpps stream (bursts every 220 µs, longer than
// busy_poll_us; about two thirds of ferryd's capacity on the bench rig)
// made the worker sleep about 2,000 times in 5 s; polling under load cut
// that to about 30 and the kernel's full-ring drops by a quarter (58-60k
// to 41-47k). So, as VPP's adaptive mode switches an interface to polling
// under load, a worker that forwarded at least pollAbovePPS in its last
// window does not sleep at all; below that it sleeps after busy_poll_us
// of silence, which keeps an idle router idle.
const (
	pollAbovePPS = 20000
	pollWindow   = 10 * time.Millisecond
)

// pollMode decides, from the packets a worker reads, whether it may sleep.
// It is fed the clock the worker reads anyway (once per batch, once per 8
// empty polls), so it costs no clock reads of its own.
type pollMode struct {
	start   time.Time
	packets int
	loaded  bool // the last full window reached pollAbovePPS
}

// add counts n packets read at now and closes the window when it is over.
func (m *pollMode) add(now time.Time, n int) {
	m.packets += n
	if el := now.Sub(m.start); el >= pollWindow {
		m.loaded = float64(m.packets) >= pollAbovePPS*el.Seconds()
		m.start, m.packets = now, 0
	}
}

// maySleep reports whether a worker idle since lastFrame may sleep now.
func (m *pollMode) maySleep(now, lastFrame time.Time, busyPoll time.Duration) bool {
	m.add(now, 0)
	if busyPoll <= 0 {
		return true
	}
	return !m.loaded && now.Sub(lastFrame) >= busyPoll
}
