#!/usr/bin/env bash
# `tally quote` of one customer-month on this machine:
#   bash bench/quote_bench.sh [CALLS=100000]
# Starts a local PostgreSQL and the dev Kafka cluster, publishes the Doubao
# plan, adds one customer, produces CALLS synthetic calls of that customer
# spread over November 2025 (Shanghai time), bills them with `tally consume`
# (archive on), then times `tally quote` of the customer's 2025-11 under a
# candidate that cuts doubao-seed-1.6-flash by 70 % (table, then JSON), and
# `tally usage` of the same period for scale. The target (issue 7): under 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100000}
tally=./build/tally
[ -x "$tally" ] || bash deploy/build.sh
work=$(mktemp -d /tmp/tally-quote-bench.XXXXXX)
chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
cleanup() {
  [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null
  bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "$port")
"$tally" dev-kafka --brokers 1 --topic usage:8 --bootstrap-file "$work/boot" >"$work/kafka.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
"$tally" migrate >/dev/null
"$tally" plan publish deploy/plans/doubao-seed-1.6.yaml >/dev/null
printf 'subscriptions:\n  - {customer: cust_0, name: "华东智能科技有限公司", plan: doubao-seed-1.6}\n' >"$work/subs.yaml"
"$tally" customer import "$work/subs.yaml" >/dev/null
# The candidate: the same plan with doubao-seed-1.6-flash 70 % cheaper.
sed -e 's/version: "2025-06"/version: "2025-11-flash-cut"/' \
    -e '/doubao-seed-1.6-flash:/,$ s/input: "0.15", cached_input: "0.03", output: "1.50"/input: "0.045", cached_input: "0.009", output: "0.45"/' \
    deploy/plans/doubao-seed-1.6.yaml >"$work/candidate.yaml"
grep -q '"0.045"' "$work/candidate.yaml"

# One customer, 29 days of November (Shanghai) in calls, zstd in the dev broker.
"$tally" produce --bootstrap-file "$work/boot" --synthetic "$calls" --customers 1 \
  --models doubao-seed-1.6,doubao-seed-1.6-flash --start 2025-11-01T00:00:00+08:00 --span 2505600 \
  --compression zstd >"$work/produce.out" 2>&1 || { tail -5 "$work/produce.out"; exit 1; }
"$tally" consume --bootstrap-file "$work/boot" --group bench --batch-size 20000 --exit-when-idle 3 \
  >"$work/consume.out" 2>"$work/consume.err" || { tail -5 "$work/consume.err"; exit 1; }
echo "stored: $(cat "$work/consume.out")"
echo "archive: $(/usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -Atc \
  "SELECT count(*) || ' rows, ' || sum(cardinality(kafka_offsets)) || ' calls' FROM event_archive")"

timed() {  # label command...
  local label=$1
  shift
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  t1=$(date +%s.%N)
  printf '%-44s %6.2f s (exit %d)\n' "$label" "$(echo "$t1 - $t0" | bc -l)" "$rc"
}
echo "$(nproc) cores, $(date -u +%FT%TZ), $calls calls of one customer-month"
timed "tally usage --customer cust_0 --period 2025-11" "$tally" usage --customer cust_0 --period 2025-11
timed "tally quote (table)" "$tally" quote --customer cust_0 --period 2025-11 --plan "$work/candidate.yaml"
cat "$work/out"
timed "tally quote --format json" "$tally" quote --customer cust_0 --period 2025-11 --plan "$work/candidate.yaml" \
  --format json
timed "tally quote --all-customers" "$tally" quote --all-customers --period 2025-11 --plan "$work/candidate.yaml"
