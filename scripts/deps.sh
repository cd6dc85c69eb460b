#!/usr/bin/env bash
# deps.sh installs the Debian packages ferry's tests and demo need, but only
# the missing ones, so it is cheap to run before every `make test`/`make demo`
# and works on a fresh Debian as root with no terminal.
set -euo pipefail

cd "$(dirname "$0")/.."

packages=(
	iproute2          # ip netns, ip link, ip route
	iputils-ping      # ping (the iputils one: -M do, "Frag needed" messages)
	iputils-tracepath # tracepath (PMTU discovery)
	traceroute        # traceroute -n -q1
	iperf3            # TCP/UDP throughput through the router
	tcpdump           # debugging captures; e2e tests check what went on the wire
	hping3            # crafted fragments and TCP SYNs in the IPv4 requirements tests
	nmap              # SYN scan of ferry's closed ports (RST expected)
	ndisc6            # rdisc6: sees ferry's IPv6 router advertisements
	socat             # servers and clients in the e2e tests and the demo
	curl              # HTTP through the filter in the e2e tests
	netcat-openbsd    # nc: TCP through the filter in the e2e tests
	coturn            # turnserver (STUN, two addresses) and turnutils_natdiscovery (RFC 5780) for the NAT tests
	ethtool           # offload inspection on lab interfaces
	nftables          # the kernel's masquerade and filter contenders in the benchmark
	wireguard-tools   # wg: the WireGuard VPN in front of ferry's TUN in the e2e tests
	procps            # sysctl, pkill-free process inspection
	ca-certificates   # go mod download over HTTPS
	make
	git
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

if command -v go >/dev/null 2>&1; then
	go mod download
	# wireguard-go for the VPN e2e test (cmd/ferryd/tun_e2e_test.go builds
	# it from the module cache; this kernel has no WireGuard module).
	go mod download golang.zx2c4.com/wireguard@v0.0.0-20260522210424-ecfc5a8d5446
else
	echo "deps.sh: go is not installed (need Go $(awk '/^go /{print $2}' go.mod) or newer)" >&2
	exit 1
fi
