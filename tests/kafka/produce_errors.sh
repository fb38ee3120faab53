#!/usr/bin/env bash
# `tally produce --file F` and messages the broker refuses. Line 6 of a
# 10-line file is 2 MB, above message.max.bytes (refused by librdkafka at
# once); then the dev broker refuses a whole Produce request (MESSAGE_TOO_LARGE,
# reported later, in delivery reports). Each refusal names F:LINE;
# --on-error stop (the default) ends at the first one with exit 1 and the
# count sent, --on-error skip goes on and exits 3 with "N sent, M refused".
set -euo pipefail
tally=${1:?usage: produce_errors.sh TALLY_BINARY SOURCE_DIR} src=${2:?}
work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$tally" dev-kafka --brokers 1 --topic big:1 --topic small:1 --bootstrap-file "$work/boot" --control "$work/ctl" \
  >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start: $(cat "$work/dev.log")"

f="$work/events.jsonl"
"$tally" produce --synthetic 9 --customers 3 --seed 4 --output "$work/nine.jsonl" >/dev/null
head -5 "$work/nine.jsonl" >"$f"
printf '{"specversion":"1.0","id":"huge","source":"t","type":"llm.call","time":"2025-11-03T00:00:00Z","subject":"cust_1","data":{"pad":"%s"}}\n' \
  "$(head -c 2000000 /dev/zero | tr '\0' x)" >>"$f"
tail -4 "$work/nine.jsonl" >>"$f"
[ "$(wc -l <"$f")" -eq 10 ] || fail "the test file should have 10 lines"

produce() {  # topic extra-args...: sets rc, out, err
  local topic=$1
  shift
  rc=0
  "$tally" produce --bootstrap-file "$work/boot" --topic "$topic" --file "$f" "$@" >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out") err=$(cat "$work/err")
}
expect() {  # what condition...
  local what=$1
  shift
  "$@" || fail "$what; exit $rc, stdout: $out; stderr: $err"
}

# The default, --on-error stop: lines 1-5 go, line 6 is refused, 7-10 are not read.
produce big
expect "stop: exit 1" [ "$rc" -eq 1 ]
expect "stop: line 6 named" grep -q "^$f:6: Broker: Message size too large (2000[0-9]* bytes" <<<"$err"
expect "stop: one refusal" [ "$(grep -c "^$f:" <<<"$err")" -eq 1 ]
expect "stop: count sent" grep -qF "tally produce: stopped after $f:6: 5 sent, 1 refused" <<<"$err"
expect "stop: summary" grep -q "sent 5 messages to big .*, delivered 5, failed 0" <<<"$out"
echo "ok: --on-error stop: $(tail -1 <<<"$err")"

produce big --on-error skip
expect "skip: exit 3" [ "$rc" -eq 3 ]
expect "skip: line 6 named" grep -q "^$f:6: Broker: Message size too large" <<<"$err"
expect "skip: one refusal" [ "$(grep -c "^$f:" <<<"$err")" -eq 1 ]
expect "skip: counts" grep -qxF "tally produce: 9 sent, 1 refused" <<<"$err"
expect "skip: summary" grep -q "sent 9 messages to big .*, delivered 9, failed 0" <<<"$out"
echo "ok: --on-error skip: $(tail -1 <<<"$err")"

# Refused by the broker, in delivery reports: the next Produce request fails.
echo "err 0 1 10" >"$work/ctl"
for _ in $(seq 50); do grep -q "control: err 0 1 10: done" "$work/dev.log" && break; sleep 0.1; done
produce small --on-error skip
expect "delivery failure: exit 3" [ "$rc" -eq 3 ]
later=$(grep -c "^$f:[0-9]*: Broker: Message size too large$" <<<"$err" || true)
expect "delivery failure: lines named" [ "$later" -ge 1 ]
expect "delivery failure: line 6 refused at once" grep -q "^$f:6: Broker: Message size too large (" <<<"$err"
expect "delivery failure: counts" grep -qxF "tally produce: $((9 - later)) sent, $((later + 1)) refused" <<<"$err"
echo "ok: refused in delivery reports: $(tail -1 <<<"$err")"

echo "err 0 1 10" >"$work/ctl"
for _ in $(seq 50); do [ "$(grep -c "control: err 0 1 10: done" "$work/dev.log")" -eq 2 ] && break; sleep 0.1; done
produce small
expect "delivery failure, stop: exit 1" [ "$rc" -eq 1 ]
expect "delivery failure, stop: line 6 refused at once" grep -q "^$f:6: Broker: Message size too large (" <<<"$err"
expect "delivery failure, stop: stopped at line 6" grep -qE "^tally produce: stopped after $f:6: [0-9]+ sent, [0-9]+ refused" <<<"$err"
echo "ok: refused in delivery reports, --on-error stop: $(tail -1 <<<"$err")"
echo "produce with refused messages: ok"
