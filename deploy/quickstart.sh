#!/usr/bin/env bash
# The main job on the bundled example data, end to end: installs and builds,
# starts a local PostgreSQL and the dev Kafka cluster, creates the ledger,
# publishes the example price plans, adds the example customers with their
# contract terms, produces the example call events to Kafka, bills them with
# `tally consume`, prints each customer's usage and cost with `tally usage`,
# then runs the invoices of the example month (2025-11), finalizes them,
# prints one, verifies their hashes, prints the margin report and writes
# the invoice PDFs to $TALLY_QUICKSTART_OUT (default /tmp/tally-quickstart).
# Then it starts `tally serve` (the HTTP API and the customer page) on the
# same ledger and prints the URL and a customer key to open it with.
# Everything runs on this machine and is stopped at the end (Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
tally=./build/tally
out=${TALLY_QUICKSTART_OUT:-/tmp/tally-quickstart}
mkdir -p "$out"
work=$(mktemp -d /tmp/tally-quickstart.XXXXXX)
chmod 755 "$work"
stop() {
  [ -n "${broker:-}" ] && kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null
  bash deploy/pg-local.sh stop "$work/pg" || true
  rm -rf "$work"
}
trap stop EXIT

step() { printf '\n== %s\n' "$*"; }

step "local PostgreSQL"
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "${TALLY_QUICKSTART_PG_PORT:-55432}")
echo "$TALLY_DATABASE_URL"

step "dev Kafka cluster (3 brokers, topic usage with 6 partitions)"
"$tally" dev-kafka --brokers 3 --topic usage:6 --bootstrap-file "$work/kafka.boot" >"$work/kafka.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$work/kafka.boot" ] && break; sleep 0.1; done
cat "$work/kafka.boot"

step "tally migrate"
"$tally" migrate
step "tally plan publish deploy/plans/*.yaml"
"$tally" plan publish deploy/plans/*.yaml
step "tally cost publish deploy/costs/*.yaml (what serving each model costs)"
"$tally" cost publish deploy/costs/*.yaml
step "tally customer import deploy/subscriptions.yaml"
"$tally" customer import deploy/subscriptions.yaml

step "tally produce (the example events; a few are bad on purpose)"
for f in deploy/events/*.jsonl; do
  "$tally" produce --bootstrap-file "$work/kafka.boot" --file "$f"
done

step "tally consume (exits once it has billed everything)"
"$tally" consume --bootstrap-file "$work/kafka.boot" --exit-when-idle 3 --log-level warn

step "dead letters (kept with their reason and raw bytes)"
/usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -c \
  "SELECT kafka_partition AS partition, kafka_offset AS offset, reason_code, left(reason, 90) AS reason FROM dead_letters ORDER BY 1, 2"

step "tally usage --period all"
"$tally" usage --period all

step "tally issuer set (who issues the invoices)"
"$tally" issuer set example-cloud --name "示例云计算（北京）有限公司 Example Cloud Ltd." \
  --address "北京市海淀区中关村大街1号 / 1 Zhongguancun Street, Haidian, Beijing" --tax-id 91110108MA00000000 \
  --email billing@example.com --default

step "tally invoice run --period 2025-11 (drafts)"
"$tally" invoice run --period 2025-11
"$tally" invoice list --period 2025-11

step "tally invoice finalize --period 2025-11 (numbers, frozen, hashed)"
"$tally" invoice finalize --period 2025-11

first=$("$tally" invoice list --period 2025-11 --status finalized | awk 'NR == 2 {print $2}')
step "tally invoice show $first"
"$tally" invoice show "$first"

step "tally invoice verify --period 2025-11"
"$tally" invoice verify --period 2025-11

step "tally margin --period 2025-11 --by customer (negative margins flagged)"
"$tally" margin --period 2025-11 --by customer
"$tally" margin --period 2025-11 --by model
"$tally" margin --period 2025-11 --by served_model  # cost follows the model that served (Model Router)

step "tally invoice export --period 2025-11 --format pdf --output $out"
"$tally" invoice export --period 2025-11 --format pdf --output "$out"
"$tally" invoice export --period 2025-11 --format csv --output "$out/2025-11.csv"
echo "the invoice PDFs are in $out (e.g. $out/$first.pdf)"

# The HTTP API and the customer page, on the same ledger. TALLY_QUICKSTART_SERVE=0
# ends here instead; otherwise the server runs until Ctrl-C, which stops
# everything this script started.
[ "${TALLY_QUICKSTART_SERVE:-1}" = 0 ] && exit 0
kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null || true
broker=
listen=${TALLY_QUICKSTART_LISTEN:-127.0.0.1:8080}
step "tally key create --role customer --customer cust_volc_a"
key=$("$tally" key create --role customer --customer cust_volc_a --label quickstart | tail -n 1)
step "tally key create --role finance; tally key create --role sales"
finance_key=$("$tally" key create --role finance --label quickstart | tail -n 1)
sales_key=$("$tally" key create --role sales --label quickstart | tail -n 1)
step "tally serve --listen $listen (Ctrl-C stops it)"
cat <<TEXT
Open http://$listen/ and sign in with this customer key (customer cust_volc_a,
华东智能科技有限公司); pick the billing period 2025-11 to see the example month:

    $key

The same data from the API:

    curl -H 'Authorization: Bearer $key' 'http://$listen/v1/usage?period=2025-11&group_by=model'
    curl -H 'Authorization: Bearer $key' 'http://$listen/v1/invoices'

Finance (invoices, run/finalize/void, margin, dead letters): open
http://$listen/finance and sign in with this finance key:

    $finance_key

Sales (plans and their price tables, quotes) through the API, with this sales key:

    curl -H 'Authorization: Bearer $sales_key' 'http://$listen/v1/plans'

TEXT
"$tally" serve --listen "$listen"
