#!/usr/bin/env bash
# Runs each libFuzzer harness in BUILD_DIR for SECONDS on a scratch copy of its corpus.
# A crash fails the run and leaves the reproducer in fuzz/out/.
set -euo pipefail
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/fuzz/out"
for bin in "$build"/fuzz_*; do
  name=$(basename "$bin")
  corpus="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
  echo "fuzz: $name for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$root/fuzz/out/$name-" "$work" \
      >"$root/fuzz/out/$name.log" 2>&1; then
    tail -n 40 "$root/fuzz/out/$name.log"
    rm -rf "$work"
    echo "fuzz: $name FAILED (reproducer in fuzz/out/)"
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "$root/fuzz/out/$name.log" | sed "s/^/fuzz: $name /" || true
  rm -rf "$work"
done
