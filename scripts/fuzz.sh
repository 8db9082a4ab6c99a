#!/usr/bin/env bash
# Builds the libFuzzer harnesses in test/fuzz/ (AddressSanitizer + UBSan)
# into build/fuzz/ and runs each for a bounded time on a COPY of its corpus
# (test/fuzz/corpus/<target>/), so the tree is not modified.
#
#   bash scripts/fuzz.sh                 build, run all targets (~60 s total;
#                                        `npm run fuzz`)
#   bash scripts/fuzz.sh --replay        build, run every corpus input once
#                                        through its target, no fuzzing (a
#                                        few seconds; what `npm test` runs)
#   bash scripts/fuzz.sh fuzz_segment    only the named target(s)
#   bash scripts/fuzz.sh --merge         also merge inputs that add coverage
#                                        into test/fuzz/corpus/<target>/
#   bash scripts/fuzz.sh --check         exit 0 if clang with libFuzzer works,
#                                        77 (with the reason) if not
#   bash scripts/fuzz.sh --build-only    build and stop
#
# Environment: FUZZ_SECONDS (total, default 60, split evenly over targets;
# --replay has no time limit but runs each input once), FUZZ_STRICT=0 (skip
# the checks for the fixed findings listed in test/fuzz/fuzz_coalesce.cc,
# default 1; builds into build/fuzz/lenient/),
# FUZZ_JOBS (parallel workers per target, default 1), CXX (default clang++,
# then clang++-NN), FUZZ_OUT (logs and reproducers, default fuzz-out/).
# Exit status: 0 when every target ran clean; 1 on any crash, leak, timeout,
# out-of-memory or sanitizer report (the reproducer paths are printed; with
# --replay, the corpus input that failed); 2 on a build or usage error; 77
# when the toolchain is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SRC=test/fuzz
BIN=build/fuzz
STRICT=${FUZZ_STRICT:-1}
[ "$STRICT" = 1 ] || BIN=build/fuzz/lenient
OUT=${FUZZ_OUT:-$ROOT/fuzz-out}
TOTAL=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
ALL_TARGETS=(fuzz_segment fuzz_coalesce fuzz_decode fuzz_suppress)
# Largest input per target: a TAP read is at most 64 KiB + 64 (fuzz_segment
# inflates small inputs to that); batches of frames need a few KiB.
declare -A MAX_LEN=([fuzz_segment]=4096 [fuzz_coalesce]=16384 [fuzz_decode]=16384)

log() { printf '[fuzz] %s\n' "$*"; }

merge=0
mode=run
targets=()
for a in "$@"; do
  case "$a" in
    --merge) merge=1 ;;
    --check) mode=check ;;
    --build-only) mode=build ;;
    --replay) mode=replay ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    fuzz_*) targets+=("$a") ;;
    *) echo "fuzz.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [ -f "$SRC/$t.cc" ] || { echo "fuzz.sh: no such target: $t" >&2; exit 2; }
done
if ! [[ "$TOTAL" =~ ^[0-9]+$ ]] || [ "$TOTAL" -lt 1 ]; then
  echo "fuzz.sh: FUZZ_SECONDS must be a positive integer" >&2
  exit 2
fi

# --- Toolchain ---------------------------------------------------------------
find_cxx() {
  if [ -n "${CXX:-}" ] && command -v "$CXX" >/dev/null 2>&1 && "$CXX" --version 2>/dev/null | grep -qi clang; then
    echo "$CXX"; return
  fi
  for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return; fi
  done
}
CLANGXX=$(find_cxx || true)
if [ -z "$CLANGXX" ]; then
  echo "fuzz.sh: SKIP: clang++ not found (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
mkdir -p "$BIN"
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$probe_dir/probe.cc"
if ! "$CLANGXX" -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cc" -o "$probe_dir/probe" \
    >"$probe_dir/probe.log" 2>&1; then
  echo "fuzz.sh: SKIP: $CLANGXX cannot link -fsanitize=fuzzer,address,undefined" \
    "(the compiler-rt runtime is missing: on Debian 12 apt-get install libclang-rt-14-dev)"
  sed -n '1,3p' "$probe_dir/probe.log"
  exit 77
fi
if [ "$mode" = check ]; then
  echo "fuzz.sh: OK: $("$CLANGXX" --version | head -n1)"
  exit 0
fi

# --- Build -------------------------------------------------------------------
CXXFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -std=c++17
          -Wall -Wextra -Inative -DFUZZ_STRICT="$STRICT")
# Only pure sources: the harnesses link the offload functions and the packet
# core (no N-API, no syscalls) and nothing else.
PURE_SOURCES=(native/engine_offload.cc native/core_ecn.cc native/core_rx.cc native/core_suppress.cc native/core_tx.cc native/core_policy.cc native/engine_fdb.cc)
for t in "${targets[@]}"; do
  bin="$BIN/$t"
  deps=("$SRC/$t.cc" "$SRC/fuzz_common.h" native/engine_offload.h native/core_ecn.h native/core_rx.h native/core_tx.h native/core_suppress.h native/core_policy.h native/engine_fdb.h "${PURE_SOURCES[@]}" "$0")
  stale=0
  if [ ! -x "$bin" ]; then stale=1; else
    for d in "${deps[@]}"; do [ "$d" -nt "$bin" ] && stale=1; done
  fi
  if [ "$stale" = 1 ]; then
    log "building $bin ($CLANGXX)"
    if ! "$CLANGXX" "${CXXFLAGS[@]}" "$SRC/$t.cc" "${PURE_SOURCES[@]}" -o "$bin.tmp"; then
      echo "fuzz.sh: build of $t failed" >&2
      exit 2
    fi
    mv "$bin.tmp" "$bin"
  fi
done
[ "$mode" = build ] && exit 0

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
SANITIZER_REPORT='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed|SUMMARY:'

# --- Replay ------------------------------------------------------------------
# Given files (not a directory), libFuzzer runs each once and writes nothing.
if [ "$mode" = replay ]; then
  [ "$merge" = 0 ] || { echo "fuzz.sh: --merge needs a fuzzing run, not --replay" >&2; exit 2; }
  replay_dir=$(mktemp -d)
  trap 'rm -rf "$probe_dir" "$replay_dir"' EXIT
  failed=0
  for t in "${targets[@]}"; do
    mapfile -t inputs < <(find "$SRC/corpus/$t" -type f | sort)
    if [ "${#inputs[@]}" -eq 0 ]; then
      log "$t: FAILED: no corpus inputs in $SRC/corpus/$t"
      failed=1
      continue
    fi
    logf="$replay_dir/$t.log"
    rc=0
    "$BIN/$t" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 "${inputs[@]}" >"$logf" 2>&1 || rc=$?
    ran=$(grep -c '^Executed ' "$logf" || true)
    if [ "$rc" -ne 0 ] || [ "$ran" -ne "${#inputs[@]}" ] || grep -qE "$SANITIZER_REPORT" "$logf"; then
      failed=1
      log "$t: FAILED (exit $rc) after $ran of ${#inputs[@]} inputs"
      last=$(grep '^Running: ' "$logf" | tail -n1 | cut -d' ' -f2- || true)
      [ -z "$last" ] || log "$t: input: $last"
      [ -z "$last" ] || log "$t:   replay: $BIN/$t $last"
      grep -E "$SANITIZER_REPORT" "$logf" | head -n 8 || true
      tail -n 20 "$logf"
    else
      log "$t: replayed $ran inputs clean"
    fi
  done
  if [ "$failed" = 1 ]; then
    log "FAILED: a corpus input crashes its target or trips a sanitizer or check"
    exit 1
  fi
  log "all corpus inputs clean"
  exit 0
fi

# --- Run ---------------------------------------------------------------------
per=$(( TOTAL / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
stamp=$(date +%Y%m%d-%H%M%S)
run_dir="$OUT/$stamp"
mkdir -p "$run_dir"
log "$CLANGXX, ${#targets[@]} target(s), ${per}s each, output in $run_dir"

failed=0
for t in "${targets[@]}"; do
  seeds="$SRC/corpus/$t"
  work="$run_dir/$t.corpus"        # the copy libFuzzer may add to
  art="$run_dir/$t.artifacts"
  mkdir -p "$work" "$art" "$seeds"
  cp -R "$seeds/." "$work/" 2>/dev/null || true
  args=(-max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048
        -max_len="${MAX_LEN[$t]:-8192}" -use_value_profile=1 -print_final_stats=1
        -artifact_prefix="$art/")
  [ "$JOBS" -gt 1 ] && args+=(-jobs="$JOBS" -workers="$JOBS")
  logf="$run_dir/$t.log"
  rc=0
  (cd "$run_dir" && "$ROOT/$BIN/$t" "${args[@]}" "$work") >"$logf" 2>&1 || rc=$?
  # With FUZZ_JOBS > 1 the workers log to fuzz-<n>.log in the run directory.
  runs=$(cat "$logf" "$run_dir"/fuzz-*.log 2>/dev/null | grep -o 'Done [0-9]* runs' | awk '{s += $2} END {print s + 0}' || true)
  cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -n1 || true)
  files=$(find "$work" -type f | wc -l)
  repro=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ -n "$repro" ]; then
    failed=1
    log "$t: FAILED (exit $rc) after $runs runs; log: $logf"
    grep -E "$SANITIZER_REPORT" "$logf" | head -n 8 || true
    for f in $repro; do
      log "$t: reproducer: $f"
      log "$t:   replay: $BIN/$t $f"
    done
    [ -n "$repro" ] || tail -n 20 "$logf"
  else
    log "$t: Done $runs runs, ${cov:-cov: ?}, corpus $files inputs"
  fi
  if [ "$merge" = 1 ] && [ "$rc" -eq 0 ]; then
    before=$(find "$seeds" -type f | wc -l)
    "$ROOT/$BIN/$t" -merge=1 -max_len="${MAX_LEN[$t]:-8192}" "$seeds" "$work" >"$run_dir/$t.merge.log" 2>&1
    after=$(find "$seeds" -type f | wc -l)
    log "$t: merged into $seeds: $before -> $after inputs ($(du -sk "$seeds" | cut -f1) KiB)"
  fi
done
if [ "$failed" = 1 ]; then
  log "FAILED: see reproducers above (copy one into test/fuzz/corpus/<target>/ to keep it as a regression input)"
  exit 1
fi
log "all targets clean"
