#!/usr/bin/env bash
# `tally consume` exits 0 when it is stopped before, around or after its first
# partition assignment. librdkafka 2.0.2 aborts when a cooperative-sticky
# consumer that has joined its group but has no assignment yet is destroyed
# (librdkafka issue 4312; the workaround is in ingest/consumer.cc). A member
# is in that state longest when the group's leader was killed -9: the dev
# broker answers its JoinGroup after session.timeout.ms - 1000 (5 s here),
# names the dead member leader, and the member waits for the dead leader's
# assignment until the leader's session expires. The dev broker takes the
# session timeout of the last member to join for every member, so a joining
# member with --session-timeout-ms 10000 waits in that state from about 5 s
# to about 10 s after its start.
# Cases, each with its own consumer group:
#   fresh   SIGTERM 0.2, 1, 3 and 4 s after start, in a new group
#   dead    SIGTERM 1, 6 and 8 s after start, in a group whose member was
#           just killed -9
#   during  SIGTERM while billing, after the assignment
#   pair    two members, one killed -9, the other with --exit-when-idle
#           (started after the kill; started before it, taking over)
# Then (after all four) every event is billed, once.
# Usage: sigterm.sh TALLY SOURCE_DIR PG_STATE [CASE...]
set -euo pipefail
tally=${1:?usage: sigterm.sh TALLY SOURCE_DIR PG_STATE [CASE...]} src=${2:?} state=${3:?}
shift 3
cases=("${@:-fresh dead during pair}")
cases=(${cases[*]})
read -r _ server <"$state"
psql=/usr/lib/postgresql/15/bin/psql
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

events=3000
"$tally" dev-kafka --brokers 3 --topic sig:6 --bootstrap-file "$work/boot" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start: $(cat "$work/dev.log")"

"$psql" "$server" -qc "DROP DATABASE IF EXISTS kafka_sigterm WITH (FORCE)" -c "CREATE DATABASE kafka_sigterm" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/kafka_sigterm
"$tally" migrate >/dev/null
"$tally" plan publish "$src/deploy/plans/doubao-seed-1.6.yaml" >/dev/null
for i in 0 1 2; do
  "$tally" customer add "cust_$i" --name "客户 $i" >/dev/null
  "$tally" subscribe "cust_$i" --plan doubao-seed-1.6 >/dev/null
done
"$tally" produce --synthetic "$events" --customers 3 --models doubao-seed-1.6 --seed 21 --output "$work/events.jsonl" \
  >/dev/null
"$tally" produce --bootstrap-file "$work/boot" --topic sig --file "$work/events.jsonl" >/dev/null

start_member() {  # group log extra-args...: in the background; its pid in $member
  local group=$1 log=$2
  shift 2
  "$tally" consume --bootstrap-file "$work/boot" --topic sig --group "$group" --batch-size 200 --linger-ms 100 "$@" \
    >"$log" 2>&1 &
  member=$!
  pids+=("$member")
}

wait_for_assignment() {  # log
  for _ in $(seq 300); do grep -qs "assigned partitions" "$1" && return 0; sleep 0.1; done
  fail "no assignment within 30 s: $(tail -3 "$1")"
}

expect_exit0() {  # pid log what seconds
  local pid=$1 log=$2 what=$3 rc=0
  for _ in $(seq $(($4 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"
    fail "$what: still running $4 s later: $(tail -3 "$log")"
  fi
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "$what: exited $rc: $(grep -m1 -o 'Assertion.*' "$log" || tail -3 "$log")"
  echo "ok: $what: exit 0$(grep -q 'assigned partitions' "$log" || echo ', before any assignment')"
}

billed_for() {  # group: the next offsets stored for it, summed over the partitions
  "$psql" "$TALLY_DATABASE_URL" -tAc \
    "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = '$1' AND topic = 'sig'"
}

case_fresh() {
  for delay in 0.2 1 3 4; do
    start_member "fresh-$delay" "$work/fresh-$delay.log"
    sleep "$delay"
    kill -TERM "$member"
    expect_exit0 "$member" "$work/fresh-$delay.log" "SIGTERM $delay s after start, new group" 30
  done
}

case_dead() {
  for delay in 1 6 8; do
    start_member "dead-$delay" "$work/dead-$delay.holder.log"
    holder=$member
    wait_for_assignment "$work/dead-$delay.holder.log"
    kill -9 "$holder"
    wait "$holder" 2>/dev/null || true
    start_member "dead-$delay" "$work/dead-$delay.log" --session-timeout-ms 10000
    sleep "$delay"
    kill -TERM "$member"
    expect_exit0 "$member" "$work/dead-$delay.log" "SIGTERM $delay s after start, group with a member killed -9" 30
  done
}

case_during() {
  start_member during "$work/during.log"
  wait_for_assignment "$work/during.log"
  sleep 0.3
  kill -TERM "$member"
  expect_exit0 "$member" "$work/during.log" "SIGTERM while billing" 30
}

case_pair() {
  # pair, a: A bills everything and is killed; B joins the group A left behind
  # and finds nothing to do, 6 s later: while it waits for the dead leader.
  start_member pair-a "$work/pair-a.a.log"
  a=$member
  for _ in $(seq 300); do [ "$(billed_for pair-a)" -eq "$events" ] && break; sleep 0.1; done
  [ "$(billed_for pair-a)" -eq "$events" ] || fail "pair a: A did not bill the topic: $(tail -3 "$work/pair-a.a.log")"
  kill -9 "$a"
  wait "$a" 2>/dev/null || true
  start_member pair-a "$work/pair-a.b.log" --exit-when-idle 6 --session-timeout-ms 10000
  expect_exit0 "$member" "$work/pair-a.b.log" "--exit-when-idle after the other member was killed -9" 60

  # pair, b: B joins while A is alive and billing events as they come, then
  # A is killed: B takes A's partitions over and bills the rest.
  "$tally" produce --synthetic "$events" --customers 3 --models doubao-seed-1.6 --seed 22 \
    --output "$work/more.jsonl" >/dev/null
  start_member pair-b "$work/pair-b.a.log"
  a=$member
  wait_for_assignment "$work/pair-b.a.log"
  "$tally" produce --bootstrap-file "$work/boot" --topic sig --file "$work/more.jsonl" --rate 600 >/dev/null &
  producer=$!
  pids+=("$producer")
  start_member pair-b "$work/pair-b.b.log" --exit-when-idle 3
  b=$member
  sleep 2
  kill -9 "$a"
  wait "$a" 2>/dev/null || true
  wait "$producer" || fail "pair b: produce failed"
  expect_exit0 "$b" "$work/pair-b.b.log" "--exit-when-idle, the other member killed -9 while both billed" 90
  local billed
  billed=$(billed_for pair-b)
  [ "$billed" -eq $((2 * events)) ] || fail "pair b: the group billed $billed of $((2 * events)) offsets"
  grep -q "assigned partitions" "$work/pair-b.b.log" || fail "pair b: B never had partitions"
  events=$((2 * events))
}

for c in "${cases[@]}"; do
  case "$c" in
    fresh | dead | during | pair) "case_$c" ;;
    *) fail "unknown case $c" ;;
  esac
done
[ ${#cases[@]} -eq 4 ] || { echo "sigterm: cases ${cases[*]} passed"; exit 0; }
keys=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(*) FROM event_keys")
[ "$keys" -eq "$events" ] || fail "$keys events billed, expected $events"
echo "consume stops cleanly: all cases passed, $keys events billed once"
