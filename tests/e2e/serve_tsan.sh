#!/usr/bin/env bash
# tally serve's threads under ThreadSanitizer: the request threads and the
# usage refresher (--usage-max-age-ms) share the answer cache while
# `tally consume` changes the answers with every batch.
#   bash tests/e2e/serve_tsan.sh TALLY SRC PG_STATE
# TALLY is a TSan build (deploy/test.sh builds build-tsan/tally; run with
# TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=tests/tsan.supp").
# Fails on a TSan report (tally serve exits 66 at the first), on a request
# that is not a 200, when the refresher computed nothing, or when tally
# serve does not stop cleanly on SIGTERM.
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
. "$src/tests/e2e/lib.sh"
e2e_begin
fail() { echo "FAIL: $*"; [ -s "$work/serve.err" ] && head -60 "$work/serve.err"; exit 1; }

"$tally" dev-kafka --brokers 1 --topic load:4 --bootstrap-file "$work/boot" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start"
"$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_serve_tsan WITH (FORCE)" -c "CREATE DATABASE e2e_serve_tsan" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/e2e_serve_tsan
"$tally" migrate >/dev/null
"$tally" plan publish "$src/deploy/plans/doubao-seed-1.6.yaml" >/dev/null
{ echo "subscriptions:"; for i in $(seq 0 9); do echo "  - {customer: cust_$i, plan: doubao-seed-1.6}"; done; } >"$work/subs.yaml"
"$tally" customer import "$work/subs.yaml" >/dev/null
for i in $(seq 0 9); do
  key=$("$tally" key create --role customer --customer "cust_$i" --label tsan | grep -E '^tly_')
  echo "$key cust_$i"
done >"$work/keys"
finance=$("$tally" key create --role finance --label tsan | grep -E '^tly_')
# Synthetic events are of 2025-11 (the month asked for): every batch changes
# every customer's answer.
"$tally" produce --bootstrap-file "$work/boot" --topic load --synthetic 100000 --customers 10 \
  --models doubao-seed-1.6 --seed 5 >/dev/null
"$tally" consume --bootstrap-file "$work/boot" --topic load --group tsan --batch-size 2000 --linger-ms 100 \
  --log-level warn >"$work/consume.log" 2>&1 &
pids+=($!)

port=$(e2e_free_port)
"$tally" serve --listen "127.0.0.1:$port" --threads 3 --usage-max-age-ms 300 >"$work/serve.out" 2>"$work/serve.err" &
serve=$!
pids+=("$serve")
base="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "$base/healthz" >/dev/null || fail "tally serve did not start"

# 15 s of rounds: each customer's month by day and by model, all at once.
end=$(( $(date +%s) + 15 ))
requests=0
while [ "$(date +%s)" -lt "$end" ]; do
  round=()
  while read -r key customer; do
    for group in day model; do
      curl -fsS -o /dev/null -H "Authorization: Bearer $key" \
        "$base/v1/usage?customer=$customer&period=2025-11&group_by=$group" &
      round+=($!)
    done
  done <"$work/keys"
  for p in "${round[@]}"; do wait "$p" || fail "a GET /v1/usage was not answered 200"; done
  requests=$(( requests + ${#round[@]} ))
done
curl -fsS -o "$work/metrics" -H "Authorization: Bearer $finance" "$base/metrics" || fail "GET /metrics"
refreshed=$(awk '/^tally_usage_cache_refreshes_total\{result="(computed|current)"\}/ { n += $2 } END { print n + 0 }' "$work/metrics")
[ "$refreshed" -gt 0 ] || fail "the refresher refreshed nothing: $(grep tally_usage_cache_ "$work/metrics")"
kill -TERM "$serve"
rc=0
wait "$serve" || rc=$?
[ "$rc" = 0 ] || fail "tally serve exited $rc (66: a TSan report)"
grep -q "ThreadSanitizer" "$work/serve.err" && fail "a TSan report"
echo "ok: $requests requests, $refreshed refreshes, no TSan report"
