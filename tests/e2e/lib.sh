# Shared setup of the end-to-end tests (source it). The caller has $tally
# (the binary) and $src (the source tree), and defines `fail MESSAGE`.
#
# e2e_begin
#   $work, a new temporary directory, and $pids, an array of processes; on
#   exit every process in $pids is killed and $work removed.
#
# e2e_example_ledger SERVER_URL DB WORK [SUBSCRIPTIONS]
#   A fresh database DB on the pg fixture's server, with the example plans,
#   the customers of SUBSCRIPTIONS (default deploy/subscriptions.yaml) and
#   the example events of 2025-11 consumed through a dev Kafka, then the
#   2025-11 invoices run and finalized. Exports TALLY_DATABASE_URL.
# e2e_free_port: prints a free TCP port on 127.0.0.1.

e2e_begin() {
  work=$(mktemp -d)
  pids=()
  trap e2e_end EXIT
}
e2e_end() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

e2e_example_ledger() {
  local server=$1 db=$2 work=$3 subscriptions=${4:-$src/deploy/subscriptions.yaml}
  local psql=/usr/lib/postgresql/15/bin/psql
  "$tally" dev-kafka --brokers 1 --topic usage:3 --bootstrap-file "$work/boot" >"$work/dev.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
  [ -s "$work/boot" ] || fail "dev-kafka did not start"
  "$psql" "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  export TALLY_DATABASE_URL=${server%/*}/$db
  "$tally" migrate >/dev/null
  "$tally" plan publish "$src"/deploy/plans/*.yaml >/dev/null
  "$tally" customer import "$subscriptions" >/dev/null
  cat "$src"/deploy/events/*.jsonl >"$work/events.jsonl"
  "$tally" produce --bootstrap-file "$work/boot" --file "$work/events.jsonl" >/dev/null
  "$tally" consume --bootstrap-file "$work/boot" --exit-when-idle 2 --log-level error >"$work/consume.log" 2>&1 || true
  "$tally" issuer set demo --name "示例云计算有限公司" --tax-id 91110000 --default >/dev/null
  "$tally" invoice run --period 2025-11 >/dev/null
  "$tally" invoice finalize --period 2025-11 >/dev/null
}

e2e_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
