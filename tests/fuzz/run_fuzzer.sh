#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from the seed corpus. Fails on
# any crash, hang, leak or sanitizer report (libFuzzer exits non-zero and
# leaves the input in WORK/).
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work" && mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
cd "$work"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" corpus 2>&1 | tail -n 25
