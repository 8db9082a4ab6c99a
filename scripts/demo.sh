#!/usr/bin/env bash
# vxland demo: two network namespaces joined by a veth pair (the "underlay"),
# vxland on one side and a Linux kernel vxlan device on the other. Shows ping
# across the overlay and the FDB vxland learned, then removes everything.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (it creates network namespaces and a TAP device); try: sudo npm run demo" >&2
  exit 1
fi

here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/system-deps.sh" demo
vxland="node $here/dist/src/cli.js"
tag="$$"
ns_a="vxdemo-a-$tag"
ns_b="vxdemo-b-$tag"
tmp=$(mktemp -d /tmp/vxland-demo.XXXXXX)
sock="$tmp/vxl0.sock"
daemon_pid=""

cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null
  fi
  ip netns del "$ns_a" 2>/dev/null
  ip netns del "$ns_b" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "underlay: namespaces $ns_a (198.18.0.1) and $ns_b (198.18.0.2) joined by veth"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "vxda$tag" netns "$ns_a" type veth peer name "vxdb$tag" netns "$ns_b"
ip -n "$ns_a" addr add 198.18.0.1/24 dev "vxda$tag"
ip -n "$ns_b" addr add 198.18.0.2/24 dev "vxdb$tag"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "vxda$tag" up
ip -n "$ns_b" link set "vxdb$tag" up

step "host B: a Linux kernel vxlan device, VNI 42, port 4789, overlay 10.42.0.2/24"
# Over veth the kernel leaves inner checksums for a NIC to finish; veth never
# does, so let the stack finish them (a physical NIC needs nothing here).
ip netns exec "$ns_b" ethtool -K "vxdb$tag" tx off >/dev/null
run ip -n "$ns_b" link add vxlan42 type vxlan id 42 dstport 4789 local 198.18.0.2 dev "vxdb$tag"
run ip netns exec "$ns_b" bridge fdb append 00:00:00:00:00:00 dev vxlan42 dst 198.18.0.1
ip -n "$ns_b" link set vxlan42 mtu 1450
ip -n "$ns_b" addr add 10.42.0.2/24 dev vxlan42
ip -n "$ns_b" link set vxlan42 up

step "host A: vxland on TAP vxl0, VNI 42, overlay 10.42.0.1/24, peer 198.18.0.2"
printf '$ vxland run --dev vxl0 --vni 42 --local 198.18.0.1 --peer 198.18.0.2 --address 10.42.0.1/24 ...\n'
ip netns exec "$ns_a" $vxland run --dev vxl0 --vni 42 --local 198.18.0.1 --peer 198.18.0.2 \
  --address 10.42.0.1/24 --state-dir "$tmp/state" --socket "$sock" --datapath "${DEMO_DATAPATH:-auto}" \
  >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do
  [ -S "$sock" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$tmp/daemon.log"; echo "demo: vxland exited" >&2; exit 1; }
  sleep 0.1
done
[ -S "$sock" ] || { cat "$tmp/daemon.log"; echo "demo: vxland did not come up" >&2; exit 1; }
head -n 3 "$tmp/daemon.log"

step "ping from vxland's side to the kernel VTEP's overlay address"
run ip netns exec "$ns_a" ping -c 3 -i 0.2 -W 2 10.42.0.2

step "ping from the kernel side back to vxland"
run ip netns exec "$ns_b" ping -c 3 -i 0.2 -W 2 10.42.0.1

step "what vxland learned"
run $vxland fdb show --socket "$sock"

step "the kernel's view of the same overlay"
run ip netns exec "$ns_b" bridge fdb show dev vxlan42

step "vxland status"
run $vxland status --socket "$sock"

step "cleaning up"
