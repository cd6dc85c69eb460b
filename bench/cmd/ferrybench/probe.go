package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// runProbe is `ferrybench probe`: ICMP echo like ping, but it waits for
// each reply by spinning on a non-blocking socket instead of sleeping.
// Through the kernel router a reply is already queued when sendto
// returns (the kernel forwards the whole round trip inside it), so ping
// never sleeps there; through any user-space router ping does sleep, and on
// this VM waking a thread on an idle vCPU costs tens of microseconds. A
// prober that never sleeps removes that client-side cost for both
// contenders and leaves the router's own.
func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	dst := fs.String("dst", "", "address to probe")
	n := fs.Int("n", 1000, "probes (at most 100000)")
	gap := fs.Duration("i", 2*time.Millisecond, "interval between probes")
	fs.Parse(args)
	a, err := netip.ParseAddr(*dst)
	if err != nil || !a.Is4() {
		return fmt.Errorf("-dst %q: want an IPv4 address", *dst)
	}
	if *n < 1 || *n > 100000 {
		return fmt.Errorf("-n %d: want 1..100000", *n)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Addr: a.As4()}
	id := uint16(os.Getpid())
	req := make([]byte, 64)
	buf := make([]byte, 1500)
	var rtts []float64 // µs
	lost := 0
	for seq := 1; seq <= *n; seq++ {
		req[0], req[1] = 8, 0 // echo request
		binary.BigEndian.PutUint16(req[2:], 0)
		binary.BigEndian.PutUint16(req[4:], id)
		binary.BigEndian.PutUint16(req[6:], uint16(seq))
		binary.BigEndian.PutUint16(req[2:], ^checksum.Checksum(req, 0))
		start := time.Now()
		if err := unix.Sendto(fd, req, 0, to); err != nil {
			return err
		}
		deadline := start.Add(time.Second)
		got := false
		for !got && time.Now().Before(deadline) {
			m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			if err != nil {
				return err
			}
			ihl := int(buf[0]&0x0f) * 4
			if m < ihl+8 {
				continue
			}
			icmp := buf[ihl:m]
			if icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id && binary.BigEndian.Uint16(icmp[6:]) == uint16(seq) {
				rtts = append(rtts, float64(time.Since(start).Nanoseconds())/1e3)
				got = true
			}
		}
		if !got {
			lost++
		}
		time.Sleep(*gap)
	}
	return json.NewEncoder(os.Stdout).Encode(struct {
		RTTs []float64 `json:"rtt_us"`
		Lost int       `json:"lost"`
	}{rtts, lost})
}
