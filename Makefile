# ferry build, test, demo and benchmark entry points. `make test` and
# `make demo` install their own Debian packages first (scripts/deps.sh), so
# both work as root on a fresh Debian clone.

GO      ?= go
BIN     := bin
# Test runtime bound: the whole suite takes a few minutes on 2 cores; the
# bound only stops a hung test from hanging CI forever.
TIMEOUT ?= 12m
# Packages whose tests are fast and do no namespace work run a second time
# under the race detector; cmd/ (end-to-end) and bench/ are left out to keep
# the suite short.
RACE_PKGS = $(shell $(GO) list ./... | grep -v -e '/cmd/' -e '/bench')
GOFILES   = $(shell find . -name '*.go' -not -path './.git/*' -not -path './bin/*')
BENCHFLAGS ?=

.PHONY: all build deps test fmt-check vet demo demo-vpn bench bench-quick clean

all: build

build:
	$(GO) build -o $(BIN)/ferryd ./cmd/ferryd
	$(GO) build -o $(BIN)/ferryctl ./cmd/ferryctl

deps:
	./scripts/deps.sh

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# -p 1 for the full run: end-to-end tests measure throughput through
# namespaces and must not compete with each other for the 2 cores.
test: deps fmt-check vet build
	$(GO) test -race -count=1 -timeout $(TIMEOUT) $(RACE_PKGS)
	$(GO) test -run '^$$' -fuzz '^FuzzOptions$$' -fuzztime 10s ./dataplane
	$(GO) test -run '^$$' -fuzz '^FuzzReassembly$$' -fuzztime 10s ./dataplane
	$(GO) test -count=1 -p 1 -timeout $(TIMEOUT) ./...
	$(GO) test -run '^$$' -fuzz '^FuzzInput6$$' -fuzztime 10s ./dataplane
	$(GO) test -run '^$$' -fuzz '^FuzzFilterStages$$' -fuzztime 10s ./dataplane
	$(GO) test -run '^$$' -fuzz '^FuzzTrack$$' -fuzztime 10s ./conntrack
	$(GO) test -run '^$$' -fuzz '^FuzzRewrite$$' -fuzztime 10s ./nat
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./filter
	$(GO) test -run '^$$' -fuzz '^FuzzEval$$' -fuzztime 10s ./filter
	@# The benchmark runs once, briefly, so it cannot rot; its figures are
	@# not judged here (a busy machine would make that a flaky test).
	@if [ "$$(id -u)" = 0 ]; then $(GO) run ./bench/cmd/ferrybench -quick -out $$(mktemp -d); \
	else echo "bench-quick skipped: needs root for namespaces"; fi

demo: deps build
	./scripts/demo.sh

# The pipeline without I/O first (ns and allocations per packet; b.N counts
# packets), then the namespace rig: kernel against ferryd.
MICROBENCH = $(GO) test -run '^$$' -bench 'Pipeline' -benchtime 2000000x ./dataplane

# The VPN gateway scenario: a WireGuard client (wireguard-go, built from the
# module proxy, and wg) tunnels into a gateway namespace whose kernel routes
# the decrypted traffic into ferry's TUN; ferry forwards it to a server
# namespace, then masquerades a TUN client behind its uplink. Prints what
# happened: pings, traceroute, iperf3, wg show, show nat.
demo-vpn: deps build
	$(GO) test -count=1 -run 'TestFerrydTUNWireGuardVPN|TestFerrydTUNMasquerade' -v ./cmd/ferryd

bench: deps build
	$(MICROBENCH)
	$(GO) run ./bench/cmd/ferrybench $(BENCHFLAGS)

bench-quick: deps build
	$(MICROBENCH)
	$(GO) run ./bench/cmd/ferrybench -quick $(BENCHFLAGS)

clean:
	rm -rf $(BIN)
	$(GO) clean -testcache
