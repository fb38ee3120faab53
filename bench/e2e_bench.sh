#!/usr/bin/env bash
# End-to-end ingestion throughput on this machine:
#   bash bench/e2e_bench.sh [EVENTS=2000000]
# Starts a local PostgreSQL and the dev Kafka cluster, publishes the Doubao
# plan, adds 1,000 customers, then for each run produces EVENTS synthetic
# events (1,000 customers, two models, spread over one hour) into a fresh
# 64-partition topic while `tally consume` bills them, and prints events/s:
#   1. archive on   (dedup keys, rollups and the raw events)
#   2. archive off  (dedup keys and rollups)
#   3. ceiling: consuming the same kind of topic and discarding the messages
#   4. ceiling: COPY of the same rows (archive columns) into PostgreSQL
# The dev broker keeps about 5 MiB per partition: the producer sends first,
# with zstd, into 64 partitions, and then the consumer is timed alone.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-2000000}
tally=./build/tally
[ -x "$tally" ] || bash deploy/build.sh
work=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
cleanup() {
  [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null
  bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "$port")
"$tally" dev-kafka --brokers 3 --topic run1:64 --topic run2:64 --topic run3:64 \
  --bootstrap-file "$work/boot" >"$work/kafka.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
"$tally" migrate >/dev/null
"$tally" plan publish deploy/plans/doubao-seed-1.6.yaml >/dev/null
{ echo "subscriptions:"; for i in $(seq 0 999); do echo "  - {customer: cust_$i, plan: doubao-seed-1.6}"; done; } >"$work/subs.yaml"
"$tally" customer import "$work/subs.yaml" >/dev/null
echo "$events events per run, $(nproc) cores, $(date -u +%FT%TZ)"

run() {  # topic label consume-args...
  local topic=$1 label=$2
  shift 2
  # Produce first (zstd keeps the whole run inside the dev broker's 5 MiB
  # per partition on 64 partitions), then time the consumer alone.
  "$tally" produce --bootstrap-file "$work/boot" --topic "$topic" --synthetic "$events" --customers 1000 \
    --models doubao-seed-1.6,doubao-seed-1.6-flash --seed "$RANDOM$RANDOM" --compression zstd \
    >"$work/$topic.produce" 2>&1 || { echo "produce failed:"; tail -5 "$work/$topic.produce"; exit 1; }
  echo "   produced: $(cat "$work/$topic.produce")"
  local t0=$(date +%s.%N)
  "$tally" consume --bootstrap-file "$work/boot" --topic "$topic" --group "bench-$topic" --batch-size "${BATCH:-50000}" \
    --linger-ms 500 --exit-when-idle 3 --log-level info "$@" >"$work/$topic.out" 2>"$work/$topic.err" \
    || { echo "consume failed:"; tail -5 "$work/$topic.err"; exit 1; }
  local t1=$(date +%s.%N)
  local n busy
  n=$(grep -o "consumed [0-9]*" "$work/$topic.out" | grep -o "[0-9]*")
  busy=$(grep -o "in [0-9.]* s from the first" "$work/$topic.out" | grep -o "[0-9.]*")
  local secs=$(echo "$t1 - $t0 - 3" | bc -l)   # minus the idle wait that ends the run
  printf '%-34s %9d messages: %8.0f events/s from the first batch to the last (%.2f s); %8.0f events/s wall clock (%.2f s, with joining the group)\n' \
    "$label" "$n" "$(echo "$n / $busy" | bc -l)" "$busy" "$(echo "$n / $secs" | bc -l)" "$secs"
  echo "     $(cat "$work/$topic.out")"
  grep -o "folded .*" "$work/$topic.err" | sed 's/^/     /' || true  # the fold at the end (and any every 30 s)
  if [ -n "${TALLY_TRACE_BATCH:-}" ]; then  # mean milliseconds per batch of each phase of the transaction
    awk '/^batch / { n = $(NF - 1); $1 = ""; $NF = ""; $(NF - 1) = ""; sum[$0] += n; cnt[$0]++ }
         END { for (k in sum) printf "     %-24s %8.1f ms per batch\n", k, sum[k] / cnt[k] / 1000 }' "$work/$topic.err"
  fi
}

run run1 "1. consume, archive on"
run run2 "2. consume, archive off" --archive false
run run3 "3. ceiling: consume and discard" --discard

# 4. COPY ceiling: one row per event (customer, partition, offset, the
# message), no index, unlogged: what PostgreSQL takes in at most here.
"$tally" produce --synthetic "$events" --customers 1000 --seed 5 --output "$work/rows.jsonl" >/dev/null
awk -v OFS='\t' '{ gsub(/\\/, "\\\\"); print "cust_" NR % 1000, NR % 64, NR, $0 }' "$work/rows.jsonl" >"$work/rows.tsv"
/usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -qc "CREATE UNLOGGED TABLE copy_ceiling (customer_id text,
  kafka_partition integer, kafka_offset bigint, payload text)" >/dev/null
t0=$(date +%s.%N)
/usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -qc "\\copy copy_ceiling FROM '$work/rows.tsv'"
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc -l)
printf '%-34s %9d rows     in %6.2f s = %8.0f rows/s\n' "4. ceiling: COPY of the same rows" "$events" "$secs" \
  "$(echo "$events / $secs" | bc -l)"
