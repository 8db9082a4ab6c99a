#!/usr/bin/env bash
# npm run bench: builds nothing itself (npm runs the build first); needs root
# and iperf3 (installed with apt-get when missing). See scripts/bench.ts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (it creates network namespaces); try: sudo npm run bench" >&2
  exit 1
fi
# BENCH_ONLY=networks or etcd (those benchmarks alone) run no iperf3. The
# etcd benchmark needs etcd-server and etcd-client (scripts/system-deps.sh test).
case "${BENCH_ONLY:-}" in networks|etcd|networks,etcd|etcd,networks) needs_iperf=no ;; *) needs_iperf=yes ;; esac
if [ "$needs_iperf" = yes ] && ! command -v iperf3 >/dev/null 2>&1; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 >/dev/null
fi
exec node "$here/dist/scripts/bench.js" "$@"
