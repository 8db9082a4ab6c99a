#!/usr/bin/env bash
# Profiles the native data path under load: two namespaces joined by a veth
# pair, a native vxland in each (VNI 42), one iperf3 TCP stream (or
# PROFILE_UDP=1: 64-byte UDP) A -> B for PROFILE_SECONDS, while
# `perf record -g` samples both vxland processes. Prints `perf report`'s top
# symbols. Everything it creates (namespaces, processes, temp dir) is removed
# on exit, also on failure. Needs root, iperf3 and perf (linux-perf).
#   scripts/profile.sh [TREE]   TREE: a built checkout (default: this one)
set -euo pipefail

TREE=$(cd "${1:-$(dirname "$0")/..}" && pwd)
SECONDS_RUN=${PROFILE_SECONDS:-8}
TOP=${PROFILE_TOP:-40}
TAG=p$$
NS_A=vxlp-$TAG-a
NS_B=vxlp-$TAG-b
DEV=vp$TAG
TMP=$(mktemp -d /tmp/vxland-profile-XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

for ns in "$NS_A" "$NS_B"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add "$DEV" netns "$NS_A" type veth peer name "$DEV" netns "$NS_B"
ip -n "$NS_A" addr add 198.18.78.1/24 dev "$DEV"
ip -n "$NS_B" addr add 198.18.78.2/24 dev "$DEV"
ip -n "$NS_A" link set "$DEV" up
ip -n "$NS_B" link set "$DEV" up

start() {  # ns local peer overlay
  ip netns exec "$1" node "$TREE/dist/src/cli.js" run --dev vxl0 --vni 42 --local "$2" --peer "$3" \
    --address "$4/24" --state-dir "$TMP/$1" --socket "$TMP/$1.sock" --datapath native --log-level warn \
    >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
}
start "$NS_A" 198.18.78.1 198.18.78.2 10.42.0.1
start "$NS_B" 198.18.78.2 198.18.78.1 10.42.0.2
for _ in $(seq 150); do
  if ip -n "$NS_A" link show vxl0 2>/dev/null | grep -q UP && ip -n "$NS_B" link show vxl0 2>/dev/null | grep -q UP; then break; fi
  sleep 0.1
done
ip netns exec "$NS_A" ping -c 3 -i 0.1 -W 1 10.42.0.2 >/dev/null

ip netns exec "$NS_B" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$NS_B" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
UDP_ARGS=()
if [ "${PROFILE_UDP:-0}" = 1 ]; then UDP_ARGS=(-u -l 64 -b 0); fi
ip netns exec "$NS_A" iperf3 -c 10.42.0.2 -p 5201 -t $((SECONDS_RUN + 1)) "${UDP_ARGS[@]}" >"$TMP/iperf.txt" &
IPERF=$!
PIDS+=($IPERF)
sleep 1  # past the slow start; perf samples a steady stream
VX=$(pgrep -f "$TMP/$NS_A.sock" | tr '\n' ',' | sed 's/,$//'),$(pgrep -f "$TMP/$NS_B.sock" | tr '\n' ',' | sed 's/,$//')
if [ "${PROFILE_STAT:-0}" = 1 ]; then
  # Counts rather than samples: CPU time per byte moved depends less on what
  # else the machine runs than the throughput does.
  perf stat -x, -e task-clock,context-switches -p "$VX" -- sleep "$SECONDS_RUN" 2>"$TMP/stat.txt"
  wait "$IPERF" || true
  awk -F, -v s="$SECONDS_RUN" '
    FNR == NR && /receiver/ { for (i = 1; i <= NF; i++) ; n = split($0, w, " +"); for (i = 1; i <= n; i++) if (w[i] ~ /bits\/sec/) { r = w[i - 1]; u = w[i] } next }
    $3 == "task-clock" { ms = $1 } $3 == "context-switches" { cs = $1 }
    END {
      g = (u ~ /^G/ ? r : u ~ /^M/ ? r / 1e3 : r / 1e6); gb = g / 8 * s
      if (udp) { kp = g * 1e6 / 512; printf "%.0f kpps, vxland %.2f CPU ms per 1000 packets, %.0f context switches per 1000 packets\n", kp, ms / (kp * s), cs / (kp * s) }
      else printf "%.2f Gbit/s, vxland %.0f CPU ms per GB, %.0f context switches per GB\n", g, ms / gb, cs / gb
    }
  ' udp="${PROFILE_UDP:-0}" "$TMP/iperf.txt" "$TMP/stat.txt"
  exit 0
fi
perf record -q -g -F 999 -o "$TMP/perf.data" -p "$VX" -- sleep "$SECONDS_RUN" 2>/dev/null
wait "$IPERF" || true
grep -E 'sender|receiver' "$TMP/iperf.txt" || true
perf report -i "$TMP/perf.data" --no-children --sort "${PROFILE_SORT:-dso,symbol}" -g none ${PROFILE_REPORT_ARGS:-} --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -n "$TOP" | cut -c1-160 | sed "s/ *$//"
