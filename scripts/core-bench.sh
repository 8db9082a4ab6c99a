#!/usr/bin/env bash
# The packet core's per-packet cost (scripts/core-bench/), built twice from
# native/: as the addon was built before this round (default symbol
# visibility, no LTO: every call between its functions goes through the PLT
# and none is inlined) and as binding.gyp builds it now (-fvisibility=hidden,
# -flto). Best of 15 runs, so it holds on a busy machine. Needs g++.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=$ROOT/native
TMP=$(mktemp -d /tmp/vxland-core-bench-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
SRC=("$ROOT/scripts/core-bench/core_bench_lib.cc" "$N/core_ecn.cc" "$N/core_rx.cc" "$N/core_policy.cc" "$N/core_tx.cc" "$N/core_suppress.cc" "$N/engine_fdb.cc" "$N/engine_offload.cc")
build() {  # name flags...
  local name=$1; shift
  g++ -std=c++17 -O3 -fPIC -shared -I"$N" "$@" -o "$TMP/lib$name.so" "${SRC[@]}"
  g++ -O2 -o "$TMP/$name" "$ROOT/scripts/core-bench/core_bench_main.cc" -L"$TMP" -l"$name" -Wl,-rpath,"$TMP"
}
build plt
build lto -flto=auto -fvisibility=hidden -fvisibility-inlines-hidden
echo "default visibility, no LTO:"; "$TMP/plt"
echo "-fvisibility=hidden -flto (binding.gyp):"; "$TMP/lto"
