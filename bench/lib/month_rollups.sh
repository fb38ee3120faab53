# Sourced by bench/invoice_bench.sh and bench/serve_bench.sh: a month of
# hourly rollups for many customers, written straight into the ledger.
#   load_month_rollups CUSTOMERS HOUR_SHARE_PERCENT
# Needs $TALLY_DATABASE_URL (migrated) and bench/plans/invoice-bench.yaml
# published (plan bench, version v1). Adds customers cust_1..cust_CUSTOMERS
# and their rollups of 2025-11 in Asia/Shanghai: UTC hours 489424
# (2025-10-31T16:00Z) to 489424+719; the period id is 2025*12+10. Every
# customer uses each of 5 models in about HOUR_SHARE_PERCENT % of the hours,
# in one band or both; hours are drawn per (customer, model) with a fixed seed.
# Bulk load: foreign key triggers off for the session (the rows are made
# consistent here) and the primary key built once after the insert.
load_month_rollups() {
  local customers=$1 share=$2
  /usr/lib/postgresql/15/bin/psql "$TALLY_DATABASE_URL" -v ON_ERROR_STOP=1 -qAt <<SQL
SET session_replication_role = replica;
ALTER TABLE rollups DROP CONSTRAINT rollups_pkey;
SELECT setseed(0.42);
INSERT INTO customers (customer_id, name) SELECT 'cust_' || i, '客户 ' || i FROM generate_series(1, $customers) i;
-- random() is drawn per combination in the subquery: a filter on random()
-- that names only b would be pushed down to b's scan and drawn twice in all.
CREATE TEMP TABLE cells AS
SELECT customer_id, model, hour, band FROM (
  SELECT 'cust_' || c AS customer_id, m AS model, h AS hour, b AS band, random() AS r
  FROM generate_series(1, $customers) c,
       unnest(ARRAY['model-a','model-b','model-c','model-d','model-e']) m,
       generate_series(489424, 489424 + 719) h,
       generate_series(0, 1) b
  OFFSET 0) s
WHERE r < $share / 100.0 * (CASE WHEN band = 0 THEN 1.0 ELSE 0.5 END);
INSERT INTO rollups (customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit, quantity, calls)
SELECT customer_id, 2025*12+10, hour, 'bench', 'v1', model, '', band, -1, -1, 0, u.unit,
       CASE u.unit WHEN '' THEN 0 ELSE (1 + floor(random() * 2000000))::bigint END,
       CASE u.unit WHEN '' THEN (1 + floor(random() * 200))::bigint ELSE 0 END
FROM cells, (VALUES (''), ('input'), ('cached_input'), ('output')) u (unit);
-- project (sql/0008) is left at its default, '': the bench names no project.
ALTER TABLE rollups ADD PRIMARY KEY (customer_id, period, hour, plan, version, model, served_model, band, condition, time_window, flags, unit, project);
ANALYZE rollups;
SQL
}
