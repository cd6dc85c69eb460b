#!/usr/bin/env bash
# demo.sh shows ferry forwarding real traffic, as root, in a throwaway lab:
#
#   host A  eth0 192.0.2.2 ── r0 [ ferryd ] r1 ── eth0 198.51.100.2  host B
#                        192.0.2.1       198.51.100.1
#                    2001:db8:1::1       2001:db8:2::1
#
# The hosts' IPv6 addresses and default routes come from ferry's router
# advertisements (SLAAC): nothing IPv6 is configured on them.
#
# Every namespace is named fydemo-<pid>-*, and the trap removes them (and
# stops ferryd and iperf3) on exit, Ctrl-C or kill, so the host is left as
# it was. Run it with `make demo`, which builds bin/ferryd and bin/ferryctl
# and installs the tools first.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "demo.sh: run as root (it creates network namespaces)" >&2
	exit 1
fi
for f in bin/ferryd bin/ferryctl; do
	if [[ ! -x $f ]]; then
		echo "demo.sh: $f missing; run 'make demo' (or 'make build' first)" >&2
		exit 1
	fi
done

A="fydemo-$$-a"
R="fydemo-$$-r"
B="fydemo-$$-b"
TMP=$(mktemp -d /tmp/ferry-demo.XXXXXX)
SOCK="$TMP/ferryd.sock"
CFG="$TMP/ferryd.toml"
LOG="$TMP/ferryd.log"
FERRYD_PID=""
IPERF_PID=""
FAILED=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $IPERF_PID $FERRYD_PID; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ns in "$A" "$R" "$B"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

if [[ -t 1 ]]; then B1=$'\e[1m' B0=$'\e[0m'; else B1="" B0=""; fi
heading() { printf '\n%s==> %s%s\n' "$B1" "$*" "$B0"; }
# step runs a command in a namespace, shows its output, and notes a failure
# instead of aborting, so the demo always reaches its summary.
step() {
	local ns=$1
	shift
	printf '%s$ %s%s\n' "$B1" "$*" "$B0"
	if ! ip netns exec "$ns" "$@"; then
		FAILED+=("$*")
	fi
}

heading "Building the lab: namespaces $A, $R, $B"
for ns in "$A" "$R" "$B"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
# Create each veth pair inside a namespace and move its peer straight into
# R: nothing is ever created on the host.
ip -n "$A" link add eth0 type veth peer name r0 netns "$R"
ip -n "$B" link add eth0 type veth peer name r1 netns "$R"
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up
ip -n "$R" link set r0 up
ip -n "$R" link set r1 up
ip -n "$A" addr add 192.0.2.2/24 dev eth0
ip -n "$A" route add default via 192.0.2.1
ip -n "$B" addr add 198.51.100.2/24 dev eth0
ip -n "$B" route add default via 198.51.100.1
# R's kernel gets no addresses and does not forward: everything R does, ferryd does.
ip netns exec "$R" sysctl -q -w net.ipv4.ip_forward=0
ip netns exec "$R" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
echo "host A: 192.0.2.2/24 on eth0, default via 192.0.2.1"
echo "host B: 198.51.100.2/24 on eth0, default via 198.51.100.1"
for ns in "$A" "$B"; do
	ip netns exec "$ns" sysctl -q -w net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.eth0.accept_ra=1
done
echo "router: r0 and r1 carry no kernel addresses; ferryd owns them"
echo "IPv6: hosts configure themselves from ferry's router advertisements"

cat >"$CFG" <<EOF
# ferryd config for the demo lab
[dataplane]
workers = 2

[control]
socket = "$SOCK"

[[interface]]
name = "r0"
kind = "afpacket"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[interface.ra]
max_interval_s = 30

[[interface]]
name = "r1"
kind = "afpacket"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]

[interface.ra]
max_interval_s = 30
EOF
heading "ferryd config ($CFG)"
cat "$CFG"

heading "Starting ferryd in $R"
ip netns exec "$R" bin/ferryd -c "$CFG" >"$LOG" 2>&1 &
FERRYD_PID=$!
ready=""
for _ in $(seq 1 150); do
	if ! kill -0 "$FERRYD_PID" 2>/dev/null; then
		break
	fi
	if bin/ferryctl -s "$SOCK" show interfaces >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
if [[ -z $ready ]]; then
	echo "ferryd did not come up; its log:" >&2
	cat "$LOG" >&2
	exit 1
fi
echo "ferryd is up (pid $FERRYD_PID)"

heading "ping A -> B through ferry"
step "$A" ping -c 5 -i 0.2 -W 1 198.51.100.2

heading "ping ferry's own addresses from A"
step "$A" ping -c 3 -i 0.2 -W 1 192.0.2.1
step "$A" ping -c 3 -i 0.2 -W 1 198.51.100.1

heading "traceroute A -> B (hop 1 is ferry)"
step "$A" traceroute -n -q1 -w1 -N1 198.51.100.2

heading "ping an unrouted address (ferry answers: net unreachable)"
printf '%s$ %s%s\n' "$B1" "ping -c 2 -W 1 203.0.113.77" "$B0"
ip netns exec "$A" ping -c 2 -i 0.2 -W 1 203.0.113.77 || true

heading "IPv6: waiting for A and B to configure themselves from ferry's router advertisements"
# global6 prints ns's global IPv6 address on eth0 in prefix $2 once DAD is done.
global6() {
	ip -n "$1" -6 -o addr show dev eth0 scope global -tentative | awk '{print $4}' | grep "^$2" | cut -d/ -f1 | head -1 || true
}
A6="" B6=""
for _ in $(seq 1 100); do
	A6=$(global6 "$A" 2001:db8:1:)
	B6=$(global6 "$B" 2001:db8:2:)
	[[ -n $A6 && -n $B6 ]] && (ip -n "$A" -6 route show default | grep -q "proto ra") && break
	sleep 0.2
done
if [[ -z $A6 || -z $B6 ]]; then
	FAILED+=("IPv6 autoconfiguration")
	echo "hosts did not configure IPv6 addresses"
else
	echo "host A: $A6, host B: $B6"
	step "$A" ip -6 route show default
	LL0=$(ip -n "$A" -6 route show default | awk '{print $3}')

	heading "ping6 A -> B through ferry, and ferry's global and link-local addresses"
	step "$A" ping -6 -c 5 -i 0.2 -W 1 "$B6"
	step "$A" ping -6 -c 3 -i 0.2 -W 1 2001:db8:1::1
	step "$A" ping -6 -c 3 -i 0.2 -W 1 "$LL0%eth0"

	heading "traceroute -6 A -> B (hop 1 is ferry)"
	step "$A" traceroute -6 -n -q1 -w1 -N1 "$B6"

	heading "ping6 an unrouted address (ferry answers: no route)"
	printf '%s$ %s%s\n' "$B1" "ping -6 -c 2 -W 1 2001:db8:ff::77" "$B0"
	ip netns exec "$A" ping -6 -c 2 -i 0.2 -W 1 2001:db8:ff::77 || true
fi

heading "iperf3 TCP A -> B, 3 seconds (hosts keep TSO/GSO/checksum offload on)"
ip netns exec "$B" iperf3 -s -1 -B 198.51.100.2 >/dev/null 2>&1 &
IPERF_PID=$!
for _ in $(seq 1 100); do
	ip netns exec "$B" ss -Hltn 'sport = :5201' | grep -q 5201 && break
	sleep 0.05
done
step "$A" iperf3 -c 198.51.100.2 -t 3 -f g

for what in interfaces routes neighbors stats; do
	heading "ferryctl show $what"
	printf '%s$ %s%s\n' "$B1" "bin/ferryctl -s $SOCK show $what" "$B0"
	bin/ferryctl -s "$SOCK" show "$what" || FAILED+=("ferryctl show $what")
done

heading "Stopping ferryd (SIGTERM)"
kill -TERM "$FERRYD_PID"
rc=0
wait "$FERRYD_PID" || rc=$?
FERRYD_PID=""
echo "ferryd exited with status $rc"
[[ $rc -eq 0 ]] || FAILED+=("ferryd exit status $rc")
echo "--- ferryd log ---"
cat "$LOG"

heading "Summary"
if ((${#FAILED[@]} > 0)); then
	echo "FAILED steps:"
	printf '  %s\n' "${FAILED[@]}"
	exit 1
fi
echo "all steps succeeded; removing the lab"
