// Command ferryd is the ferry router daemon: it reads a TOML config, opens
// the configured ports, forwards between them until SIGINT or SIGTERM, and
// answers ferryctl on a unix socket.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/ferry-router/ferry/config"
	"github.com/ferry-router/ferry/dataplane"
)

func main() { os.Exit(run()) }

func run() int {
	cfgPath := flag.String("c", "/etc/ferry/ferry.toml", "config `file`")
	check := flag.Bool("check", false, "check the config and exit")
	level := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "ferryd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferryd: %v\n", err)
		return 1
	}
	if err := dataplane.CheckRuleset(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "ferryd: %v\n", err)
		return 1
	}
	if *check {
		fmt.Printf("%s: ok\n", *cfgPath)
		return 0
	}

	if os.Getenv("GOMAXPROCS") == "" {
		// Workers spend idle time blocked in poll(2) and need a P the moment
		// a packet wakes them; with a P per worker on top of one per CPU,
		// the control plane and the garbage collector can never hold every
		// P while a worker waits (a full-table load did, for a second).
		runtime.GOMAXPROCS(runtime.NumCPU() + cfg.Dataplane.Workers)
	}
	r, err := dataplane.New(cfg, dataplane.Options{Log: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctl, err := startControl(cfg.Control.Socket, r, log)
	if err != nil {
		r.Stop()
		log.Error("cannot open control socket", "err", err)
		return 1
	}
	handleRouting(ctl, r, cfg)
	handleFilter(ctl, r, *cfgPath, log)
	r.Start()
	var met *metricsServer
	if cfg.Metrics.Listen != "" {
		// In ferryd's own network namespace, after the router is running;
		// an address that cannot be bound stops ferryd here.
		if met, err = startMetrics(cfg.Metrics.Listen, r, log); err != nil {
			ctl.Close()
			r.Stop()
			log.Error("cannot start metrics endpoint", "err", err)
			fmt.Fprintf(os.Stderr, "ferryd: %s:%d: metrics.listen: %v\n", *cfgPath, cfg.Metrics.Line, err)
			return 1
		}
	}
	names := make([]string, 0, len(cfg.Interfaces))
	for _, i := range cfg.Interfaces {
		names = append(names, i.Name)
	}
	log.Info("ferryd running", "config", *cfgPath, "interfaces", names, "workers", cfg.Dataplane.Workers, "control", cfg.Control.Socket, "metrics", cfg.Metrics.Listen)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	s := <-sig
	for s == syscall.SIGHUP {
		reload(r, *cfgPath, log) // logs its own outcome
		s = <-sig
	}
	log.Info("stopping", "signal", s.String())
	if met != nil {
		met.Close()
	}
	ctl.Close()
	r.Stop()
	log.Info("stopped")
	return 0
}
