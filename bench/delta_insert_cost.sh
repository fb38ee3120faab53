#!/usr/bin/env bash
# The consumer's cost of sql/0009 on rollup_deltas (its index and the
# usage_marks trigger):
#   bash bench/delta_insert_cost.sh [ROWS=12000] [REPS=20]
# Times an INSERT of ROWS delta rows (1,000 customers; a 50,000-event batch of the serve bench writes
# about 12,000) REPS times into a fresh ledger, then again with the trigger
# dropped, then with the index dropped too (medians; rows accumulate as
# between two folds). Uses ./build/tally to migrate.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-12000}; reps=${2:-20}
work=$(mktemp -d /tmp/tally-delta-cost.XXXXXX); chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
trap 'bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "$port")
./build/tally migrate >/dev/null
psql=/usr/lib/postgresql/15/bin/psql
run() {
  $psql "$TALLY_DATABASE_URL" -qAt <<SQL
\timing on
$(for i in $(seq "$reps"); do cat <<ONE
INSERT INTO rollup_deltas (customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit, quantity, calls)
SELECT 'cust_' || (i % 1000), 2026*12+10, 499000 + i / 1000, 'p', 'v', 'm', '', 0, -1, -1, 0, (ARRAY['','input','cached_input','output'])[1 + (i / 250) % 4],
       CASE WHEN (i / 250) % 4 = 0 THEN 0 ELSE i END, CASE WHEN (i / 250) % 4 = 0 THEN 1 ELSE 0 END
FROM generate_series(1, $rows) i;
ONE
done)
SQL
}
echo "with 0009 (index + trigger):"; run | grep Time | awk '{ print $2 }' | sort -n | awk '{ a[NR] = $1 } END { print "  median " a[int((NR+1)/2)] " ms, min " a[1] " ms over " NR }'
$psql "$TALLY_DATABASE_URL" -qAtc "TRUNCATE rollup_deltas; DROP TRIGGER rollup_deltas_mark_usage ON rollup_deltas"
echo "index only:"; run | grep Time | awk '{ print $2 }' | sort -n | awk '{ a[NR] = $1 } END { print "  median " a[int((NR+1)/2)] " ms, min " a[1] " ms over " NR }'
$psql "$TALLY_DATABASE_URL" -qAtc "TRUNCATE rollup_deltas; DROP INDEX rollup_deltas_customer_period"
echo "without:"; run | grep Time | awk '{ print $2 }' | sort -n | awk '{ a[NR] = $1 } END { print "  median " a[int((NR+1)/2)] " ms, min " a[1] " ms over " NR }'
