#!/usr/bin/env bash
# What the fold of the rollup deltas costs the database, the way it is now
# (FoldDeltas in ledger/batch_writer.cc: in one REPEATABLE READ snapshot,
# the upsert of the deltas' sums into rollups, then DELETE of those deltas;
# no table lock) against the two ways it was before: until commit 4bc1294,
# LOCK rollup_deltas ACCESS EXCLUSIVE, the same upsert, TRUNCATE; from
# 4bc1294 to 2026-11-30 evening, one statement (a data-modifying CTE that
# deleted the deltas and upserted the rows it returned).
#   bash bench/fold_cost.sh [ROLLUPS=5000000] [DELTAS=1000000] [REPS=3]
# Loads ROLLUPS rollups rows (10,000 customers over a month's hours) and
# DELTAS delta rows (1,000 customers over 20 hours, half of them onto
# existing rollups rows) into a fresh migrated ledger, then times each fold
# REPS times, the three in turn, each in a transaction rolled back (so
# every run folds the same rows), with triggers and foreign-key checks off
# (session_replication_role = replica: the rows name no published plan),
# alike for all three: the statements' own cost. Uses ./build/tally to migrate.
set -euo pipefail
cd "$(dirname "$0")/.."
rollups=${1:-5000000}; deltas=${2:-1000000}; reps=${3:-3}
work=$(mktemp -d /tmp/tally-fold-cost.XXXXXX); chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
trap 'bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export TALLY_DATABASE_URL=$(bash deploy/pg-local.sh start "$work/pg" "$port")
./build/tally migrate >/dev/null
psql=/usr/lib/postgresql/15/bin/psql
cols="customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit, project"
max=9223372036854775807
$psql "$TALLY_DATABASE_URL" -qAt <<SQL
SET session_replication_role = replica;
INSERT INTO rollups ($cols, quantity, calls)
SELECT 'cust_' || (i % 10000), 2025*12+10, 488000 + (i / 10000) % 720, 'p', 'v', 'm' || (i / 7200000), '', 0, -1, -1, 0,
       'input', '', i, 0
FROM generate_series(1, $rollups) i;
INSERT INTO rollup_deltas ($cols, quantity, calls)
SELECT 'cust_' || (i % 1000), 2025*12+10, 488700 + (i / 1000) % 20, 'p', 'v', 'm0', '', 0, -1, -1, 0,
       (ARRAY['input','output'])[1 + (i / 1000) % 2], '', 1, 0
FROM generate_series(1, $deltas) i;
SQL
$psql "$TALLY_DATABASE_URL" -qc "VACUUM ANALYZE"
upsert="INSERT INTO rollups AS u ($cols, quantity, calls) SELECT $cols, LEAST(sum(quantity), $max)::bigint, LEAST(sum(calls), $max)::bigint"
conflict="GROUP BY $cols ORDER BY $cols ON CONFLICT ($cols) DO UPDATE SET quantity = LEAST(u.quantity::numeric + EXCLUDED.quantity, $max)::bigint, calls = LEAST(u.calls::numeric + EXCLUDED.calls, $max)::bigint"
old="LOCK TABLE rollup_deltas IN ACCESS EXCLUSIVE MODE; $upsert FROM rollup_deltas $conflict; TRUNCATE rollup_deltas;"
cte="WITH moved AS (DELETE FROM rollup_deltas RETURNING $cols, quantity, calls), folded AS ($upsert FROM moved $conflict RETURNING 1) SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM folded);"
now="$upsert FROM rollup_deltas $conflict; DELETE FROM rollup_deltas;"
timed() {  # SQL: seconds of BEGIN (repeatable read); SQL; ROLLBACK
  local t0 t1
  t0=$(date +%s.%N)
  $psql "$TALLY_DATABASE_URL" -qAt -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL session_replication_role = replica; $1 ROLLBACK;" >/dev/null
  t1=$(date +%s.%N)
  awk "BEGIN { printf \"%.2f\", $t1 - $t0 }"
}
echo "fold of $deltas deltas into $rollups rollups rows; $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
  echo "run $r: lock + TRUNCATE $(timed "$old") s, one statement $(timed "$cte") s, upsert + DELETE in one snapshot (now) $(timed "$now") s"
done
