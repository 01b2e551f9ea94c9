#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage) in
# build-fuzz/ and runs each for the given number of seconds (default 60) on a
# scratch copy of its committed corpus, so the corpus in git never grows by
# itself; one target per core at a time. Fails on any crash, leak, timeout or
# out-of-memory; the input that caused it is left in build-fuzz/artifacts/.
#
# Usage: bash fuzz/run.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
shift || true
build=$root/build-fuzz
jobs=${SNAP_FUZZ_JOBS:-2}

# Warnings are not errors here: the clang -Werror gate is the TSan build, and
# fuzzing must not stop at a new warning in code it does not test.
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSNAP_BUILD_FUZZ=ON -DSNAP_SANITIZE=ON -DSNAP_WERROR=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" \
  -DSNAP_BUILD_TESTS=OFF -DSNAP_BUILD_EXAMPLES=OFF -DSNAP_BUILD_BENCH=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/fuzz_*.c; do
    targets+=("$(basename "$src" .c)")
  done
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

# Longest input per target: large enough for the structure each one parses,
# small enough that every execution stays fast.
max_len_of() {
  case "$1" in
    fuzz_body_mutate) echo 512 ;;
    fuzz_config) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

mkdir -p "$build/artifacts"
# Targets that need files (fuzz_store_load) keep them here, in memory when
# /dev/shm exists; removed at the end even if a target crashed.
fuzz_tmp=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/snapfuzz.XXXXXX")
trap 'rm -rf "$fuzz_tmp"' EXIT
export SNAP_FUZZ_TMP=$fuzz_tmp
summary=$build/fuzz-summary.txt
: >"$summary"
# One target on each core at a time (SNAP_FUZZ_PARALLEL overrides): every
# target still fuzzes for the full time, the run ends sooner.
par=${SNAP_FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 1)}
fuzz_one() { # target: runs it, writes its exit status to $build/$t.status
  local t=$1 scratch status=0
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/snapfuzz-$t.XXXXXX")
  cp fuzz/corpus/"$t"/* "$scratch"/ 2>/dev/null || true
  local args=(-max_total_time="$secs" -max_len="$(max_len_of "$t")" -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  "$build/fuzz/$t" "${args[@]}" "$scratch" >"$build/$t.log" 2>&1 || status=$?
  rm -rf "$scratch"
  echo "$status" >"$build/$t.status"
}
rm -f "$build"/*.status
running=0
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$par" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
failed=()
for t in "${targets[@]}"; do
  log=$build/$t.log
  status=$(cat "$build/$t.status" 2>/dev/null || echo 1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  echo "$t: status=$status execs=${execs:-?} peak_rss_mb=${rss:-?} ${done_line}" | tee -a "$summary"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    echo "---- $t failed; the end of its log ($log):"
    tail -n 60 "$log"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)"
  exit 1
fi
echo "fuzz: all targets ran ${secs}s without a failure"
