#!/usr/bin/env bash
# npm run bench: builds nothing itself (npm runs the build first); needs root
# and iperf3 (installed with apt-get when missing). See scripts/bench.ts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (it creates network namespaces); try: sudo npm run bench" >&2
  exit 1
fi
# BENCH_ONLY=networks (the many-networks benchmark alone) sends no traffic.
if [ "${BENCH_ONLY:-}" != networks ] && ! command -v iperf3 >/dev/null 2>&1; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y iperf3 >/dev/null
fi
exec node "$here/dist/scripts/bench.js" "$@"
