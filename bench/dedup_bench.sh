#!/usr/bin/env bash
# The dedup step alone, in SQL, against a table of stored keys:
#   bash bench/dedup_bench.sh [STORED=2000000] [BATCH=50000]
# event_keys as in sql/0001_ledger.sql holds STORED random 16-byte keys;
# then, each in a transaction that is rolled back, BATCH new keys go in
#   a. as tally consume does: look them up (= ANY(uuid[]), by the primary
#      key), then insert the new ones
#   b. in one INSERT .. ON CONFLICT DO NOTHING
# and psql prints the time of each statement.
set -euo pipefail
cd "$(dirname "$0")/.."
stored=${1:-2000000} batch=${2:-50000}
work=$(mktemp -d /tmp/tally-dedup.XXXXXX)
chmod 755 "$work"
port=$(( 20000 + RANDOM % 20000 ))
trap 'bash deploy/pg-local.sh stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$(bash deploy/pg-local.sh start "$work/pg" "$port")
echo "$stored stored keys, batches of $batch, $(date -u +%FT%TZ)"
/usr/lib/postgresql/15/bin/psql "$url" -q -v stored="$stored" -v batch="$batch" <<'SQL' | grep -E "^Time|^[ab]\."
CREATE TABLE event_keys (event_key uuid PRIMARY KEY, payload_hash uuid NOT NULL,
                         accepted_at timestamptz NOT NULL DEFAULT now());
INSERT INTO event_keys (event_key, payload_hash)
  SELECT md5(i::text)::uuid, md5(i::text || 'p')::uuid FROM generate_series(1, :stored) i;
VACUUM ANALYZE event_keys;
SELECT '{' || string_agg(md5(i::text || 'new')::uuid::text, ',') || '}' AS keys
  FROM generate_series(1, :batch) i \gset
\echo a. lookup, then insert (two times)
BEGIN;
SET LOCAL enable_seqscan = off;
\timing on
SELECT count(*) FROM event_keys WHERE event_key = ANY(:'keys'::uuid[]);
INSERT INTO event_keys (event_key, payload_hash) SELECT k, k FROM unnest(:'keys'::uuid[]) k;
\timing off
ROLLBACK;
\echo b. INSERT .. ON CONFLICT DO NOTHING
BEGIN;
\timing on
INSERT INTO event_keys (event_key, payload_hash) SELECT k, k FROM unnest(:'keys'::uuid[]) k ON CONFLICT DO NOTHING;
\timing off
ROLLBACK;
SQL
