#!/usr/bin/env bash
# End to end, with the real pieces: the dev Kafka cluster, a real PostgreSQL
# (the pg fixture), and `tally` processes. Each scenario produces synthetic
# events (1 % duplicates, 1 % malformed) plus crafted ones (a conflicting
# re-send and an exact copy back to back, two calls of one cell and hour
# with no unit in common far apart in the stream, a zero-token call of a
# customer with a minimum commitment) to its own topic and database,
# consumes them under some fault, and then checks that
#   - the invoices priced from the ledger's rollups (tally usage) equal
#     `tally rate` on the same file (which dedups as the ledger does) byte
#     for byte, calls included, and
#   - the dead letters (reason code and reason) are exactly the lines tally
#     rate rejects, whatever the batching.
# crash, pg_restart and broker_faults store with several connections at once
# (--store-connections), the others with one.
# Usage: consume_e2e.sh TALLY SOURCE_DIR PG_STATE [SCENARIO...]
set -euo pipefail
tally=$1 src=$2 state=$3
shift 3
scenarios=("${@:-clean crash pg_restart rebalance broker_faults retention_gap permanent_errors}")
read -r pgdir server < "$state"
port=${server##*:}; port=${port%%/*}
psql=/usr/lib/postgresql/15/bin/psql
# shellcheck source=lib.sh
. "$src/tests/e2e/lib.sh"
e2e_begin
fail() { echo "FAIL: $*"; exit 1; }

"$tally" dev-kafka --brokers 3 --topic clean:6 --topic crash:6 --topic pg_restart:6 --topic rebalance:6 \
  --topic broker_faults:6 --topic retention_gap:1 --bootstrap-file "$work/boot" --control "$work/ctl" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start"

# cust_0 and cust_1 move to another plan half way through the events (which
# span 2025-11-03 and -04): their calls are rated under the plan in force at
# each call's time, and their November gives one invoice per plan.
plan="$src/deploy/plans/doubao-seed-1.6.yaml"
promo="$work/promo.yaml"
sed 's/^plan: doubao-seed-1.6$/plan: doubao-seed-1.6-promo/' "$plan" >"$promo"
switch=2025-11-04T00:00:00Z
subs="$work/subs.yaml"
echo "subscriptions:" >"$subs"
for i in $(seq 0 9); do printf '  - {customer: cust_%d, name: "客户 %d", plan: doubao-seed-1.6}\n' "$i" "$i" >>"$subs"; done
for i in 0 1; do
  printf '  - {customer: cust_%d, name: "客户 %d", plan: doubao-seed-1.6-promo, from: "%s"}\n' "$i" "$i" "$switch" >>"$subs"
done
echo '  - {customer: cust_z, plan: doubao-seed-1.6, minimum_commitment: "50"}' >>"$subs"
echo 'minimum_commitment: "50"' >"$work/terms_z.yaml"

ev() {  # id subject input output
  printf '{"specversion":"1.0","id":"%s","source":"e2e","type":"llm.call","time":"2025-11-03T10:15:00Z",' "$1"
  printf '"subject":"%s","data":{"model":"doubao-seed-1.6","input_tokens":%d,"output_tokens":%d}}\n' "$2" "$3" "$4"
}

setup() {  # name seed count
  local name=$1 seed=$2 count=$3
  "$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_$name WITH (FORCE)" -c "CREATE DATABASE e2e_$name" >/dev/null
  export TALLY_DATABASE_URL=${server%/*}/e2e_$name
  "$tally" migrate >/dev/null
  "$tally" plan publish "$plan" >/dev/null
  "$tally" plan publish "$promo" >/dev/null
  for i in $(seq 0 9); do
    "$tally" customer add "cust_$i" --name "客户 $i" >/dev/null
    "$tally" subscribe "cust_$i" --plan doubao-seed-1.6 >/dev/null
  done
  for i in 0 1; do "$tally" subscribe "cust_$i" --plan doubao-seed-1.6-promo --from "$switch" >/dev/null; done
  "$tally" customer add cust_z >/dev/null
  "$tally" subscribe cust_z --plan doubao-seed-1.6 --terms "$work/terms_z.yaml" >/dev/null
  "$tally" produce --synthetic "$count" --customers 10 --models doubao-seed-1.6,doubao-seed-1.6-flash \
    --duplicates 0.01 --malformed 0.01 --seed "$seed" --span 172800 --output "$work/$name.synthetic.jsonl" >/dev/null
  {
    ev e2e-o cust_2 1000 100      # billed first
    ev e2e-in cust_3 100 0        # input only ...
    cat "$work/$name.synthetic.jsonl"
    ev e2e-out cust_3 0 50        # ... and output only: same cell and hour, another batch
    ev e2e-o cust_2 1000 999      # a conflicting re-send of e2e-o
    ev e2e-o cust_2 1000 100      # and an exact copy, back to back: a duplicate
    ev e2e-zero cust_z 0 0        # zero tokens: cust_z's invoice is its commitment
    # Routed by the Model Router: billed as doubao-seed-1.6, served by the flash model.
    ev e2e-routed cust_4 2000 300 | sed 's/"model":"doubao-seed-1.6",/&"served_model":"doubao-seed-1.6-flash",/'
  } >"$work/$name.jsonl"
}

consume() {  # name extra-args...: in the foreground
  local name=$1
  shift
  "$tally" consume --bootstrap-file "$work/boot" --topic "$name" --group "g-$name" --batch-size 2000 --linger-ms 100 "$@"
}

start_consumer() {  # name log extra-args...: in the background; its pid in $consumer
  local name=$1 log=$2
  shift 2
  "$tally" consume --bootstrap-file "$work/boot" --topic "$name" --group "g-$name" --batch-size 2000 \
    --linger-ms 100 "$@" >"$log" 2>&1 &
  consumer=$!
  pids+=("$consumer")
}

check() {  # name
  local name=$1
  set +e
  "$tally" rate --format json --plan "$plan" --plan "$promo" --subscriptions "$subs" \
    --events "$work/$name.jsonl" >"$work/$name.rate.json"
  local rc=$?
  set -e
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "$name: tally rate exited $rc"
  "$tally" usage --period all --format json >"$work/$name.usage.json" || fail "$name: tally usage failed"
  local rate usage
  rate=$(cat "$work/$name.rate.json"); rate=${rate%%\],\"rejected\"*}
  usage=$(cat "$work/$name.usage.json"); usage=${usage%%\],\"rejected\"*}
  [ ${#rate} -gt 1000 ] || fail "$name: tally rate priced nothing"
  [ "$(grep -o '"customer":"cust_0","customer_name":"[^"]*","plan":"doubao-seed-1.6[-a-z]*"' <<<"$rate" | sort -u | wc -l)" -eq 2 ] \
    || fail "$name: cust_0 changed plan on $switch but has no invoice under each plan"
  grep -q '"customer":"cust_z".*"description":"minimum commitment 50.00 CNY"' <<<"$rate" \
    || fail "$name: cust_z's zero-token call did not bill its commitment"
  if [ "$rate" != "$usage" ]; then
    diff <(tr '{' '\n' <<<"$rate") <(tr '{' '\n' <<<"$usage") | head -20
    fail "$name: the ledger's invoices differ from tally rate"
  fi
  # Dead letters: the same codes and reasons as the lines tally rate rejects.
  python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["rejected"]: print(r["code"] + "|" + r["reason"].replace("\n", " "))' \
    "$work/$name.rate.json" | sort >"$work/$name.rejected"
  "$psql" "$TALLY_DATABASE_URL" -tAc "SELECT reason_code || '|' || replace(reason, E'\\n', ' ') FROM dead_letters" \
    | sort >"$work/$name.dead"
  local dead conflicts
  dead=$(wc -l <"$work/$name.dead")
  conflicts=$(grep -c '^conflict|' "$work/$name.dead" || true)
  if ! cmp -s "$work/$name.rejected" "$work/$name.dead"; then
    diff "$work/$name.rejected" "$work/$name.dead" | head -10
    fail "$name: the dead letters differ from the lines tally rate rejects"
  fi
  [ "$conflicts" -ge 1 ] || fail "$name: the conflicting re-send is not a dead letter"
  # The routed call's served model is kept in its rollup (sql/0005).
  local routed
  routed=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT string_agg(DISTINCT model || '>' || served_model, ',') \
    FROM usage_rollups WHERE served_model <> ''")
  [ "$routed" = "doubao-seed-1.6>doubao-seed-1.6-flash" ] || fail "$name: the routed call's served model is '$routed'"
  local keys archived
  keys=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(*) FROM event_keys")
  archived=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(DISTINCT payload) FROM archived_events")
  [ "$keys" -eq "$archived" ] || fail "$name: $keys events billed but $archived distinct ones archived"
  local total
  total=$(grep -o '"total":"[0-9.]*"' "$work/$name.usage.json" | head -1)
  echo "ok: $name: invoices equal to tally rate ($total ...), $dead dead letters equal to its rejected lines ($conflicts conflicts)"
}

for scenario in ${scenarios[@]}; do
  case "$scenario" in
    clean)
      setup clean 11 6000
      "$tally" produce --bootstrap-file "$work/boot" --topic clean --file "$work/clean.jsonl" >/dev/null
      consume clean --exit-when-idle 3 >"$work/clean.log" 2>&1 || fail "clean: consume failed: $(tail "$work/clean.log")"
      check clean
      ;;
    crash)
      setup crash 12 20000
      "$tally" produce --bootstrap-file "$work/boot" --topic crash --file "$work/crash.jsonl" --rate 1000 >/dev/null &
      producer=$!
      pids+=($producer)
      billed_before=()
      for k in 1 2 3 4 5 6; do
        start_consumer crash "$work/crash.$k.log" --store-connections 2
        c=$consumer
        # Kill it at a random moment after it has its partitions and is billing.
        for _ in $(seq 150); do grep -q "assigned partitions" "$work/crash.$k.log" && break; sleep 0.1; done
        sleep "0.$(( RANDOM % 9 + 1 ))"
        kill -9 "$c" 2>/dev/null || true
        wait "$c" 2>/dev/null || true
        billed_before+=("$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(*) FROM event_keys")")
      done
      echo "crash: billed after each kill -9: ${billed_before[*]}"
      [ "${billed_before[-1]}" -gt 0 ] || fail "crash: nothing was billed before the kills"
      wait "$producer"
      consume crash --exit-when-idle 3 >"$work/crash.final.log" 2>&1 || fail "crash: the last consume failed: $(tail -40 "$work/crash.final.log")"
      check crash
      ;;
    pg_restart)
      setup pg_restart 13 20000
      "$tally" produce --bootstrap-file "$work/boot" --topic pg_restart --file "$work/pg_restart.jsonl" --rate 4000 \
        >/dev/null &
      pids+=($!)
      start_consumer pg_restart "$work/pg_restart.log" --exit-when-idle 4 --store-connections 3
      c=$consumer
      sleep 2
      bash "$src/deploy/pg-local.sh" stop "$pgdir"
      sleep 2
      bash "$src/deploy/pg-local.sh" start "$pgdir" "$port" >/dev/null
      wait "$c" || fail "pg_restart: consume failed: $(tail "$work/pg_restart.log")"
      grep -q "PostgreSQL unreachable\|retrying\|terminating\|admin" "$work/pg_restart.log" \
        || echo "note: the consumer did not hit the restart (no retry logged)"
      consume pg_restart --exit-when-idle 3 >>"$work/pg_restart.log" 2>&1
      check pg_restart
      ;;
    rebalance)
      setup rebalance 14 16000
      "$tally" produce --bootstrap-file "$work/boot" --topic rebalance --file "$work/rebalance.jsonl" --rate 1000 \
        >/dev/null &
      producer=$!
      pids+=($producer)
      start_consumer rebalance "$work/rebalance.a.log"
      a=$consumer
      sleep 4
      start_consumer rebalance "$work/rebalance.b.log" --exit-when-idle 30
      b=$consumer
      sleep 8
      kill -9 "$a"
      wait "$b" || fail "rebalance: consumer b failed"
      grep -q "assigned partitions" "$work/rebalance.b.log" || fail "rebalance: b never got partitions"
      taken=$( (grep "assigned partitions" "$work/rebalance.b.log" || true) | grep -oE " [0-9]+@" | sort -u | wc -l)
      [ "$taken" -eq 6 ] || fail "rebalance: b took over $taken of 6 partitions: $(grep assigned "$work/rebalance.b.log")"
      wait "$producer"
      consume rebalance --exit-when-idle 3 >>"$work/rebalance.b.log" 2>&1
      check rebalance
      ;;
    broker_faults)
      setup broker_faults 15 16000
      "$tally" produce --bootstrap-file "$work/boot" --topic broker_faults --file "$work/broker_faults.jsonl" \
        --rate 4000 >/dev/null &
      pids+=($!)
      start_consumer broker_faults "$work/broker_faults.log" --exit-when-idle 6 --store-connections 2
      c=$consumer
      sleep 1.5
      echo "err 1 5 6" >"$work/ctl"     # Fetch: NOT_LEADER_FOR_PARTITION x5
      echo "err 3 3 7" >"$work/ctl"     # Metadata: REQUEST_TIMED_OUT x3
      sleep 1
      echo "down 2" >"$work/ctl"
      sleep 2
      echo "up 2" >"$work/ctl"
      wait "$c" || fail "broker_faults: consume failed"
      consume broker_faults --exit-when-idle 3 >>"$work/broker_faults.log" 2>&1
      grep -q "control: down 2: done" "$work/dev.log" || fail "broker_faults: the fault was not injected"
      check broker_faults
      ;;
    retention_gap)
      # Events lost to retention before they were billed: the partition stops,
      # an operator skips the gap, and it is recorded.
      setup retention_gap 16 1000
      "$tally" produce --bootstrap-file "$work/boot" --topic retention_gap --file "$work/retention_gap.jsonl" >/dev/null
      consume retention_gap --exit-when-idle 2 >"$work/retention_gap.log" 2>&1 || fail "retention_gap: first consume"
      # ~16 MB uncompressed into one partition: the dev broker keeps 5 MiB.
      "$tally" produce --bootstrap-file "$work/boot" --topic retention_gap --synthetic 50000 --customers 10 \
        --seed 99 --compression none >/dev/null
      set +e
      consume retention_gap --exit-when-idle 2 >>"$work/retention_gap.log" 2>&1
      rc=$?
      set -e
      [ $rc -eq 1 ] || fail "retention_gap: consume should stop the partition and exit 1, exited $rc"
      grep -q "is no longer on the broker" "$work/retention_gap.log" || fail "retention_gap: no clear error"
      "$tally" offsets skip-gap --bootstrap-file "$work/boot" --topic retention_gap --group g-retention_gap \
        --partition 0 --by e2e-test | tee -a "$work/retention_gap.log" | grep -q "skipped offsets" \
        || fail "retention_gap: skip-gap did nothing"
      consume retention_gap --exit-when-idle 2 >>"$work/retention_gap.log" 2>&1 || fail "retention_gap: consume after skip"
      gaps=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(*) FROM offset_gaps WHERE skipped_by = 'e2e-test'")
      [ "$gaps" -eq 1 ] || fail "retention_gap: the gap was not recorded"
      billed=$("$psql" "$TALLY_DATABASE_URL" -tAc "SELECT count(*) FROM event_keys")
      [ "$billed" -gt 1000 ] && [ "$billed" -lt 50000 ] || fail "retention_gap: billed $billed"
      echo "ok: retention_gap: stopped with a clear error, gap skipped by an operator and recorded, $billed billed"
      ;;
    permanent_errors)
      # A permanent error ends the run at once, with what to do; an
      # unreachable ledger or broker ends an --exit-when-idle run in bounded time.
      expect_exit1() {  # what grep-pattern args...
        local what=$1 pattern=$2
        shift 2
        local start=$SECONDS rc=0
        timeout 60 "$tally" consume --topic clean --group g-errors --exit-when-idle 1 --give-up-after 3 "$@" \
          >"$work/errors.log" 2>&1 || rc=$?
        [ $rc -eq 1 ] || fail "permanent_errors: $what: exit $rc, not 1: $(tail -2 "$work/errors.log")"
        grep -q "$pattern" "$work/errors.log" || fail "permanent_errors: $what: no '$pattern' in $(tail -2 "$work/errors.log")"
        echo "ok: permanent_errors: $what: exit 1 in $((SECONDS - start)) s"
      }
      "$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_nomig WITH (FORCE)" -c "CREATE DATABASE e2e_nomig" >/dev/null
      expect_exit1 "never migrated" "run tally migrate" --bootstrap-file "$work/boot" --database-url "${server%/*}/e2e_nomig"
      expect_exit1 "no such database" "does not exist" --bootstrap-file "$work/boot" \
        --database-url "${server%/*}/e2e_no_such_db"
      expect_exit1 "PostgreSQL unreachable" "gave up after 3 s" --bootstrap-file "$work/boot" \
        --database-url "postgresql://tally@127.0.0.1:1/tally"
      setup errors 17 10
      expect_exit1 "brokers unreachable" "brokers did not answer" --brokers 127.0.0.1:1
      ;;
    *) fail "unknown scenario $scenario" ;;
  esac
done
echo "consume end-to-end: all scenarios passed"
