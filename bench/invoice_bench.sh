#!/usr/bin/env bash
# Invoice run speed on this machine:
#   bash bench/invoice_bench.sh [CUSTOMERS=10000] [HOUR_SHARE_PERCENT=10]
# Starts a local PostgreSQL, publishes bench/plans/invoice-bench.yaml (5
# models x 2 bands x 3 token units), writes a month (2025-11) of hourly
# rollups straight into the ledger with SQL: every customer uses every model
# in about HOUR_SHARE_PERCENT % of the hours, in one band or both. Then times
# `tally invoice run --period 2025-11` (drafts for every customer) and
# `tally invoice finalize --period 2025-11`.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-10000}
share=${2:-10}
tally=./build/tally
[ -x "$tally" ] || bash deploy/build.sh
work=$(mktemp -d /tmp/tally-invoice-bench.XXXXXX)
chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
cleanup() {
  bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
. bench/lib/month_rollups.sh
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "$port")
psql() { /usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
"$tally" migrate >/dev/null
"$tally" plan publish bench/plans/invoice-bench.yaml >/dev/null
"$tally" issuer set bench --name "基准科技有限公司" >/dev/null
echo "$customers customers, ~$share % of hours per model, $(nproc) cores, $(date -u +%FT%TZ)"
t0=$(date +%s.%N)
# bench/lib/month_rollups.sh: the rollups of 2025-11, straight into the ledger with SQL.
load_month_rollups "$customers" "$share"
t1=$(date +%s.%N)
rows=$(psql -c "SELECT count(*) FROM rollups")
echo "setup: $rows rollup rows in $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
# TALLY_BENCH_WRAP prefixes the timed run (e.g. "perf record -g -o /tmp/run.perf").
TALLY_TRACE_RUN=1 /usr/bin/time -f "invoice run: %e s wall (%U s user, %S s system), %M KiB max RSS" ${TALLY_BENCH_WRAP:-} "$tally" invoice run --period 2025-11
/usr/bin/time -f "finalize: %e s wall, %M KiB max RSS" "$tally" invoice finalize --period 2025-11 | tail -1
psql -c "SELECT count(*) || ' invoices, ' || sum(total) || ' CNY in total' FROM invoices"
psql -c "SELECT count(*) || ' invoice lines' FROM invoice_lines"
# A digest of every invoice and line (all but the finalization timestamps and
# the ids of the run): equal digests mean the run wrote the same invoices.
psql -c "SELECT 'digest ' || md5(string_agg(d, E'\n' ORDER BY n)) FROM (
  SELECT i.number AS n, concat_ws('|', i.number, i.customer_id, i.customer_name, i.plan, i.period, i.period_id,
         i.period_start, i.period_end, i.time_zone, i.currency, i.rounding, i.round_at, i.plan_versions, i.calls,
         i.exact_subtotal, i.subtotal, i.tax_percent, i.tax, i.total, i.grants, i.amount_due, i.error, i.grace_until,
         i.sha256 IS NOT NULL,
         (SELECT string_agg(concat_ws('|', l.line_no, l.kind, l.description, l.plan_version, l.model, l.unit, l.band,
                                      l.output_condition, l.time_window, l.batch, l.thinking, l.tier, l.quantity,
                                      l.rate, l.rate_per, l.amount, l.amount_rounded, l.first_hour, l.last_hour,
                                      l.adjusts_period, l.adjusts_invoice, l.basis_calls, l.basis_subtotal),
                            E'\n' ORDER BY l.line_no)
          FROM invoice_lines l WHERE l.invoice_id = i.invoice_id)) AS d
  FROM invoices i) s"
