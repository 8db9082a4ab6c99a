#!/usr/bin/env bash
# UDP checksums and GRO against a kernel vxlan peer (BENCHMARKS.md, "UDP
# checksums and GRO against kernel peers"). For each vxland data path
# (native, dgram) x the kernel peer's outer checksum (udpcsum, noudpcsum) x
# the kernel peer's veth tx checksum offload (on, off): two fresh namespaces
# joined by a veth (IPv4 underlay, as scripts/bench.ts builds them), vxland in
# A, a kernel vxlan in B; TCP single stream both ways (iperf3 -t SECONDS), its
# retransmits, the inner TCP and outer UDP checksum errors counted by each
# namespace's stack (nstat), vxland's drops (status --json), whether the outer
# UDP checksums on the wire are zero (tcpdump -vv), and, for native, whether
# its receives carry UDP_GRO super-datagrams (recvmmsg msg_len > 1500, strace).
# Knobs: CSUM_DATAPATHS (default "native dgram"), CSUM_PEER_TX (the peer veth's tx
# offload, default "on off"), CSUM_VXLAND_GRO / CSUM_PEER_GRO (on|off: GRO on
# that side's veth; default as created, off), CSUM_SECONDS.
# Needs root; run under the bench lock (-o: vxland must not inherit it):
#   flock -o /tmp/vxland-bench.lock scripts/csum-check.sh
# Everything it creates is removed on exit.
# Not -e: one failing case (no connectivity) is a result to print, not a reason to stop.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TEST=${CSUM_SECONDS:-3}
CLI="$PWD/dist/src/cli.js"
TAG=$(printf '%04x' $$ | tail -c 4)
NA="vxlc-$TAG-a"; NB="vxlc-$TAG-b"; DEV="vc$TAG"
TMP=$(mktemp -d /tmp/vxland-csum.XXXXXX)
VX=""
stop_iperf_servers() { for f in "$TMP"/iperf-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; done; }
cleanup() {
  [ -n "$VX" ] && kill "$VX" 2>/dev/null && wait "$VX" 2>/dev/null || true
  stop_iperf_servers
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
counter() { nsx "$1" nstat -asz "$2" | awk -v k="$2" '$1 == k { print $2 }'; }
# iperf3 client in $1 to $2; prints "Gbit/s retransmits".
tcp() { nsx "$1" iperf3 -c "$2" -t "$SECONDS_PER_TEST" --connect-timeout 3000 -J | jq -r 'if .error then "fail -" else "\(.end.sum_received.bits_per_second / 1e9 * 100 | round / 100) \(.end.sum_sent.retransmits)" end' || true; }
# Outer UDP checksum of 5 VXLAN datagrams sent by $2, seen in $1: "zero", "ok" or "bad".
wire_csum() {
  nsx "$1" timeout 5 tcpdump -l -n -vv -c 5 -i "$DEV" "udp port 4789 and src $2" 2>/dev/null |
    awk '/\[no cksum\]/ { z++ } /udp sum ok/ { o++ } /bad udp cksum/ { b++ } END { print (b ? "bad" : z ? "zero" : o ? "ok" : "?") }'
}

printf '| vxland | kernel peer | peer veth tx offload | vxland → kernel Gbit/s (retr) | kernel → vxland Gbit/s (retr) | outer UDP csum sent by vxland / kernel | UDP InCsumErrors A/B | TCP InCsumErrors A/B | vxland drops | native receives with GRO super-datagrams |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for dp in ${CSUM_DATAPATHS:-native dgram}; do
  for csum in noudpcsum udpcsum; do
    for tx in ${CSUM_PEER_TX:-on off}; do
      ip netns add "$NA"; ip netns add "$NB"
      for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; nsx "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1; done
      ip link add "$DEV" netns "$NA" type veth peer name "$DEV" netns "$NB"
      ip -n "$NA" addr add 198.18.78.1/24 dev "$DEV"; ip -n "$NB" addr add 198.18.78.2/24 dev "$DEV"
      ip -n "$NA" link set "$DEV" up; ip -n "$NB" link set "$DEV" up
      nsx "$NB" ethtool -K "$DEV" tx "$tx" >/dev/null
      # CSUM_PEER_GRO=on: GRO on the kernel peer's veth.
      [ -n "${CSUM_PEER_GRO:-}" ] && nsx "$NB" ethtool -K "$DEV" gro "$CSUM_PEER_GRO" >/dev/null
      # CSUM_VXLAND_GRO=on: GRO on vxland's veth (veth NAPI), so the host can
      # hand vxland's UDP_GRO socket super-datagrams.
      [ -n "${CSUM_VXLAND_GRO:-}" ] && nsx "$NA" ethtool -K "$DEV" gro "$CSUM_VXLAND_GRO" >/dev/null
      ip -n "$NB" link add vxk0 type vxlan id 42 dstport 4789 local 198.18.78.2 dev "$DEV" "$csum"
      bridge -n "$NB" fdb append 00:00:00:00:00:00 dev vxk0 dst 198.18.78.1
      ip -n "$NB" link set vxk0 mtu 1450; ip -n "$NB" addr add 10.42.0.2/24 dev vxk0; ip -n "$NB" link set vxk0 up
      # Not through nsx: a backgrounded function is a subshell, and $! would
      # name it instead of vxland (ip netns exec execs the command).
      ip netns exec "$NA" node "$CLI" run --dev vxl0 --vni 42 --local 198.18.78.1 --peer 198.18.78.2 --address 10.42.0.1/24 \
        --state-dir "$TMP/state" --socket "$TMP/s.sock" --datapath "$dp" --log-level warn >"$TMP/vx.log" 2>&1 &
      VX=$!
      for _ in $(seq 150); do nsx "$NA" ip -4 addr show vxl0 2>/dev/null | grep -q 10.42.0.1 && break; sleep 0.1; done
      for _ in $(seq 10); do nsx "$NA" ping -c 1 -W 1 10.42.0.2 >/dev/null 2>&1 && break; done
      nsx "$NB" iperf3 -s -D -p 5201 -I "$TMP/iperf-b.pid"; nsx "$NA" iperf3 -s -D -p 5201 -I "$TMP/iperf-a.pid"; sleep 0.3
      sentV=$( (sleep 0.5; nsx "$NA" ping -c 10 -i 0.05 10.42.0.2 >/dev/null) & wire_csum "$NB" 198.18.78.1)
      sentK=$( (sleep 0.5; nsx "$NB" ping -c 10 -i 0.05 10.42.0.1 >/dev/null) & wire_csum "$NA" 198.18.78.2)
      toK=$(tcp "$NA" 10.42.0.2)
      fromK=$(tcp "$NB" 10.42.0.1)
      gro="—"
      if [ "$dp" = native ]; then
        # strace slows every receive: it watches a second, shorter transfer,
        # not the one measured above.
        strace -f -qq -e trace=recvmmsg -e abbrev=none -p "$VX" -o "$TMP/strace" & ST=$!
        sleep 0.5
        SECONDS_PER_TEST=1 tcp "$NB" 10.42.0.1 >/dev/null
        kill "$ST"; wait "$ST" 2>/dev/null || true
        calls=$(grep -c '^[0-9]* *recvmmsg(.*= [1-9]' "$TMP/strace" || true)
        big=$(grep '^[0-9]* *recvmmsg(.*= [1-9]' "$TMP/strace" | grep -c 'msg_len=\([2-9][0-9]\{3\}\|1[5-9][0-9][0-9]\|[0-9]\{5\}\)' || true)
        gro="$big of $calls"
      fi
      drops=$(node "$CLI" -j status --socket "$TMP/s.sock" | jq '[.. | objects | .drops? // empty | if type == "object" then to_entries[] | .value else . end | numbers] | add // 0')
      printf '| %s | %s | %s | %s (%s) | %s (%s) | %s / %s | %s/%s | %s/%s | %s | %s |\n' "$dp" "$csum" "$tx" \
        ${toK} ${fromK} "$sentV" "$sentK" \
        "$(counter "$NA" UdpInCsumErrors)" "$(counter "$NB" UdpInCsumErrors)" \
        "$(counter "$NA" TcpInCsumErrors)" "$(counter "$NB" TcpInCsumErrors)" "$drops" "$gro"
      [ -s "$TMP/vx.log" ] && { echo "vxland ($dp, $csum, tx $tx) said:" >&2; cat "$TMP/vx.log" >&2; }
      kill "$VX"; wait "$VX" 2>/dev/null || true; VX=""; stop_iperf_servers
      ip netns del "$NA"; ip netns del "$NB"; rm -rf "$TMP/state"
    done
  done
done
