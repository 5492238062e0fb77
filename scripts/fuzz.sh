#!/usr/bin/env bash
# Runs each libFuzzer harness in BUILD_DIR for SECONDS on a scratch copy of its corpus, JOBS
# harnesses at a time (default: one per CPU; a harness is one process on one CPU, so more at once
# would only give each fewer runs in its SECONDS). A crash fails the run and leaves the reproducer
# in fuzz/out/.
set -euo pipefail
build=$1
seconds=$2
jobs=${3:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/fuzz/out"

fuzz_one() {
  local bin=$1 name corpus work rc=0
  name=$(basename "$bin")
  corpus="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$root/fuzz/out/$name-" "$work" \
    >"$root/fuzz/out/$name.log" 2>&1 || rc=$?
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$root/fuzz/out/$name.log"
    echo "fuzz: $name FAILED (reproducer in fuzz/out/)"
    return 1
  fi
  grep -E '^stat::number_of_executed_units' "$root/fuzz/out/$name.log" | sed "s/^/fuzz: $name /" || true
}

failed=0
running=0
for bin in "$build"/fuzz_*; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  echo "fuzz: $(basename "$bin") for ${seconds}s"
  fuzz_one "$bin" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
[ "$failed" -eq 0 ]
