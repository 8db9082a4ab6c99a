#!/usr/bin/env bash
# Profiles the native data path under load: two namespaces joined by a veth
# pair, a native vxland in each (VNI 42), one iperf3 TCP stream (or
# PROFILE_UDP=1: 64-byte UDP) A -> B for PROFILE_SECONDS, while
# `perf record -g` samples both vxland processes. Prints `perf report`'s top
# symbols. Everything it creates (namespaces, processes, temp dir) is removed
# on exit, also on failure. Needs root, iperf3 and perf (linux-perf).
# PROFILE_PING=1: no iperf3; PROFILE_PINGS pings (default 100) every
# PROFILE_PING_INTERVAL seconds (default 0.05, the bench's)
# A -> B under `perf sched record`, then the scheduler's view of the round
# trip: per thread, how often it was switched in and its wake-up delays
# (wake-up to running), the cost a user-space VTEP pays per hop, and the
# CPU the vxland processes used per round trip (perf's own share included).
# PROFILE_PAIR=kernel: kernel vxlan devices in both namespaces instead, for
# the same measurements of the path vxland is compared with (PROFILE_STAT
# and PROFILE_PING; there is no vxland process to sample); mixed: vxland in
# A, a kernel vxlan in B (tx checksum offload off on B's veth, as in the
# bench).
# PROFILE_STAT=1 also prints how busy the whole machine was (/proc/stat).
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

PAIR=${PROFILE_PAIR:-native}
start() {  # ns local peer overlay
  if [ "$PAIR" = kernel ] || { [ "$PAIR" = mixed ] && [ "$1" = "$NS_B" ]; }; then
    [ "$PAIR" = mixed ] && ip netns exec "$1" ethtool -K "$DEV" tx off >/dev/null
    ip -n "$1" link add vxl0 type vxlan id 42 local "$2" remote "$3" dstport 4789 dev "$DEV"
    ip -n "$1" addr add "$4/24" dev vxl0
    ip -n "$1" link set vxl0 up
    return
  fi
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

# The vxland processes (none with PROFILE_PAIR=kernel, A's alone with mixed),
# comma-separated as perf -p takes them.
VX=$(pgrep -d, -f "$TMP/vxlp-" || true)

# CPU ticks (user + system, all threads) of the vxland processes so far.
vxland_ticks() {
  local sum=0 pid
  for pid in ${VX//,/ }; do
    sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}

if [ "${PROFILE_PING:-0}" = 1 ]; then
  PINGS=${PROFILE_PINGS:-100}
  sleep 1  # the engines go idle, as before the bench's ping
  ticks0=$(vxland_ticks)
  start_ns=$(date +%s%N)
  perf sched record -q -o "$TMP/sched.data" -- \
    ip netns exec "$NS_A" ping -q -c "$PINGS" -i "${PROFILE_PING_INTERVAL:-0.05}" -W 1 10.42.0.2 >"$TMP/ping.txt" 2>/dev/null
  ticks1=$(vxland_ticks)
  elapsed_ns=$(($(date +%s%N) - start_ns))
  grep -E 'packets|rtt' "$TMP/ping.txt"
  if [ "$PAIR" != kernel ]; then
    awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v ns="$elapsed_ns" -v n="$PINGS" \
      'BEGIN { printf "vxland: %.1f %% of a CPU, %.0f us of CPU per round trip\n", t / hz * 1e11 / ns, t / hz * 1e6 / n }'
  fi
  perf sched latency -i "$TMP/sched.data" --sort switch 2>/dev/null |
    grep -E 'Task|node|vxland|ping|libuv|engine' | head -n "$TOP" | sed "s/ *$//"
  exit 0
fi

ip netns exec "$NS_B" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$NS_B" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
UDP_ARGS=()
if [ "${PROFILE_UDP:-0}" = 1 ]; then UDP_ARGS=(-u -l 64 -b 0); fi
ip netns exec "$NS_A" iperf3 -c 10.42.0.2 -p 5201 -t $((SECONDS_RUN + 1)) "${UDP_ARGS[@]}" >"$TMP/iperf.txt" &
IPERF=$!
PIDS+=($IPERF)
sleep 1  # past the slow start; perf samples a steady stream
if [ "${PROFILE_STAT:-0}" = 1 ]; then
  # Counts rather than samples: CPU time per byte moved depends less on what
  # else the machine runs than the throughput does.
  read -r -a cpu0 < <(grep '^cpu ' /proc/stat)
  if [ "$PAIR" = kernel ]; then
    sleep "$SECONDS_RUN"
    : >"$TMP/stat.txt"
  else
    perf stat -x, -e task-clock,context-switches -p "$VX" -- sleep "$SECONDS_RUN" 2>"$TMP/stat.txt"
  fi
  read -r -a cpu1 < <(grep '^cpu ' /proc/stat)
  total=0
  for i in 1 2 3 4 5 6 7 8; do total=$((total + cpu1[i] - cpu0[i])); done
  idle=$((cpu1[4] + cpu1[5] - cpu0[4] - cpu0[5]))
  wait "$IPERF" || true
  busy=$(awk -v t="$total" -v i="$idle" -v n="$(nproc)" 'BEGIN { printf "%.3f", (t - i) / t * n }')
  awk -F, -v s="$SECONDS_RUN" -v udp="${PROFILE_UDP:-0}" -v pair="$PAIR" -v busy="$busy" -v n="$(nproc)" '
    FNR == NR && /receiver/ { k = split($0, w, " +"); for (i = 1; i <= k; i++) if (w[i] ~ /bits\/sec/) { r = w[i - 1]; u = w[i] } next }
    $3 == "task-clock" { ms = $1 } $3 == "context-switches" { cs = $1 }
    END {
      g = (u ~ /^G/ ? r : u ~ /^M/ ? r / 1e3 : r / 1e6); gb = g / 8 * s
      if (udp) {
        kp = g * 1e6 / 512
        printf "%.0f kpps; machine %.2f of %d CPUs busy, %.2f CPU us per packet", kp, busy, n, busy * 1e3 / kp
        if (pair != "kernel") printf "; vxland %.2f CPU ms per 1000 packets, %.0f context switches per 1000 packets", ms / (kp * s), cs / (kp * s)
      } else {
        printf "%.2f Gbit/s; machine %.2f of %d CPUs busy, %.2f CPU s per GB", g, busy, n, busy * s / gb
        if (pair != "kernel") printf "; vxland %.0f CPU ms per GB, %.0f context switches per GB", ms / gb, cs / gb
      }
      printf "\n"
    }
  ' "$TMP/iperf.txt" "$TMP/stat.txt"
  exit 0
fi
if [ "$PAIR" = kernel ]; then echo "profile: PROFILE_PAIR=kernel has no vxland to sample (use PROFILE_STAT=1 or PROFILE_PING=1)" >&2; exit 2; fi
perf record -q -g -F 999 -o "$TMP/perf.data" -p "$VX" -- sleep "$SECONDS_RUN" 2>/dev/null
wait "$IPERF" || true
grep -E 'sender|receiver' "$TMP/iperf.txt" || true
perf report -i "$TMP/perf.data" --no-children --sort "${PROFILE_SORT:-dso,symbol}" -g none ${PROFILE_REPORT_ARGS:-} --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -n "$TOP" | cut -c1-160 | sed "s/ *$//"
