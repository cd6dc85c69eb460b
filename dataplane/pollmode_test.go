package dataplane

import (
	"testing"
	"time"
)

func TestPollModeSleepsOnlyWhenQuiet(t *testing.T) {
	busy := 100 * time.Microsecond
	t0 := time.Unix(1000, 0)
	var m pollMode
	m.add(t0, 0)

	// Idle: spin for busy_poll_us after the last frame, then sleep.
	m.add(t0.Add(time.Millisecond), 1)
	last := t0.Add(time.Millisecond)
	if m.maySleep(last.Add(50*time.Microsecond), last, busy) {
		t.Error("slept 50 µs after a frame with busy_poll_us 100")
	}
	if !m.maySleep(last.Add(150*time.Microsecond), last, busy) {
		t.Error("did not sleep 150 µs after a frame at idle")
	}

	// Loaded: 300 frames in a 10 ms window (30 kpps) keep it polling
	// through a gap longer than busy_poll_us.
	now := t0.Add(20 * time.Millisecond)
	m.add(now, 0) // a fresh window
	for i := 1; i <= 10; i++ {
		now = now.Add(time.Millisecond)
		m.add(now, 30)
	}
	last = now
	if m.maySleep(now.Add(500*time.Microsecond), last, busy) {
		t.Error("slept under 30 kpps")
	}

	// A window at 10 kpps is below the threshold: sleeping is allowed again.
	for i := 1; i <= 10; i++ {
		now = now.Add(time.Millisecond)
		m.add(now, 10)
	}
	last = now
	if !m.maySleep(now.Add(500*time.Microsecond), last, busy) {
		t.Error("kept polling at 10 kpps")
	}

	// busy_poll_us = 0 means never spin, whatever the load.
	var z pollMode
	z.add(t0, 0)
	z.add(t0.Add(pollWindow), 1000)
	if !z.maySleep(t0.Add(pollWindow), t0.Add(pollWindow), 0) {
		t.Error("busy_poll_us 0 did not sleep")
	}
}
