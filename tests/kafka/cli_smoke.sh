#!/usr/bin/env bash
# `tally dev-kafka` and `tally produce` as a person uses them: start the dev
# cluster in the background, produce the example events, inject a fault
# through the control FIFO, stop it with SIGTERM.
set -euo pipefail
tally=${1:?usage: cli_smoke.sh TALLY_BINARY SOURCE_DIR}
src=${2:?}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$tally" dev-kafka --brokers 3 --topic usage:6 --bootstrap-file "$work/boot" --control "$work/ctl" \
    >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || { echo "dev-kafka did not write its bootstrap file"; cat "$work/dev.log"; exit 1; }
out=$("$tally" produce --bootstrap-file "$work/boot" --file "$src/deploy/events/doubao.jsonl")
echo "$out"
grep -q "sent 12 messages to usage (2 malformed" <<<"$out"
grep -q "delivered 12, failed 0" <<<"$out"
echo "down 2" >"$work/ctl"
echo "up 2" >"$work/ctl"
sleep 0.5
kill -TERM "$pid"
wait "$pid"
grep -q "dev-kafka control: down 2: done" "$work/dev.log"
grep -q "dev Kafka cluster stopped" "$work/dev.log"
[ ! -e "$work/boot" ] || { echo "the bootstrap file was left behind"; exit 1; }
"$tally" produce --synthetic 10 2>/dev/null && { echo "produce without brokers should fail"; exit 1; }
echo "dev-kafka and produce: ok"
