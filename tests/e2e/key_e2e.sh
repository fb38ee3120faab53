#!/usr/bin/env bash
# API keys and the audit log through the `tally` CLI, against the pg
# fixture's PostgreSQL: usage errors exit 2 with a sentence, key create
# prints the secret once on its own line (and the ledger holds only its
# SHA-256), key list never shows a secret, revoke is audited and refuses a
# second time, and tally audit lists who did what.
# Usage: key_e2e.sh TALLY SOURCE_DIR PG_STATE
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
q() { "$psql" "$TALLY_DATABASE_URL" -qAt -c "$1"; }
# expect CODE WHAT COMMAND...: runs COMMAND, output in $work/out, demands exit CODE.
expect() {
  local want=$1 what=$2
  shift 2
  local got=0
  "$@" >"$work/out" 2>&1 || got=$?
  [ "$got" = "$want" ] || fail "$what: exit $got, want $want: $(cat "$work/out")"
}

"$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_keys WITH (FORCE)" -c "CREATE DATABASE e2e_keys" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/e2e_keys
"$tally" migrate >/dev/null
"$tally" plan publish "$src"/deploy/plans/*.yaml >/dev/null
"$tally" customer import "$src/deploy/subscriptions.yaml" >/dev/null
customer=$(q "SELECT min(customer_id) FROM customers")
[ -n "$customer" ] || fail "no customer imported"

# Usage errors: exit 2 with a sentence, and no key written.
expect 2 "no role" "$tally" key create --customer "$customer"
expect 2 "unknown role" "$tally" key create --role root
grep -q "must be customer, finance, sales or admin" "$work/out" || fail "unknown role: $(cat "$work/out")"
expect 2 "customer key without a customer" "$tally" key create --role customer
grep -q "needs --customer" "$work/out" || fail "no reason: $(cat "$work/out")"
expect 2 "finance key with a customer" "$tally" key create --role finance --customer "$customer"
grep -q "only for --role customer" "$work/out" || fail "no reason: $(cat "$work/out")"
expect 2 "bad expiry" "$tally" key create --role sales --expires tomorrow
grep -q "RFC 3339" "$work/out" || fail "no reason: $(cat "$work/out")"
expect 2 "expiry in the past" "$tally" key create --role sales --expires 2001-01-01T00:00:00Z
grep -q "in the past" "$work/out" || fail "no reason: $(cat "$work/out")"
expect 2 "bad format" "$tally" key list --format xml
expect 2 "bad limit" "$tally" audit --limit 0
expect 2 "revoke without an id" "$tally" key revoke
expect 2 "key without a subcommand" "$tally" key
# What the ledger refuses: exit 1 with the reason.
expect 1 "unknown customer" "$tally" key create --role customer --customer cust_nobody
grep -q "no customer 'cust_nobody'" "$work/out" || fail "no reason: $(cat "$work/out")"
[ "$(q "SELECT count(*) FROM api_keys")" = 0 ] || fail "a refused create wrote a key"
[ "$(q "SELECT count(*) FROM audit_log")" = 0 ] || fail "a refused create was audited"
(unset TALLY_DATABASE_URL; expect 2 "no database" "$tally" key list)

# Create: the secret once, on its own line, with the warning.
USER=alice "$tally" key create --role customer --customer "$customer" --label "portal" >"$work/create" ||
  fail "key create: $(cat "$work/create")"
secret=$(grep -E '^tly_[0-9a-f]{12}_[0-9a-f]{64}$' "$work/create") || fail "no secret line: $(cat "$work/create")"
[ "$(grep -c "$secret" "$work/create")" = 1 ] || fail "the secret is printed more than once"
grep -q "shown only this once" "$work/create" || fail "no warning that it is shown once: $(cat "$work/create")"
key_id=${secret:4:12}
grep -q "Created API key $key_id" "$work/create" || fail "no key id: $(cat "$work/create")"
random=${secret:17}
USER=alice "$tally" key create --role finance --expires 2099-01-01T00:00:00Z >"$work/create2" ||
  fail "finance key: $(cat "$work/create2")"
secret2=$(grep -E '^tly_' "$work/create2")

# The ledger holds the hash only.
[ "$(q "SELECT count(*) FROM api_keys WHERE secret_sha256 = sha256(convert_to('$secret', 'UTF8'))")" = 1 ] ||
  fail "the stored hash is not the secret's SHA-256"
dump=$("$psql" "$TALLY_DATABASE_URL" -qAt -c "SELECT t::text FROM api_keys t" -c "SELECT t::text FROM audit_log t")
case "$dump" in *"$random"* | *"${secret2:17}"*) fail "a secret is stored in the ledger" ;; esac

# List: both keys, no secret, in table and JSON.
"$tally" key list >"$work/list" || fail "key list: $(cat "$work/list")"
"$tally" key list --format json >"$work/list.json" || fail "key list json: $(cat "$work/list.json")"
for f in "$work/list" "$work/list.json"; do
  grep -q "$key_id" "$f" || fail "$f lacks the key"
  grep -q "${secret2:4:12}" "$f" || fail "$f lacks the finance key"
  if grep -q -e "$random" -e "${secret2:17}" -e "tly_" "$f"; then fail "$f shows a secret"; fi
done
python3 - "$work/list.json" "$key_id" "$customer" <<'PY' || fail "key list json: $(cat "$work/list.json")"
import json, sys
keys = {k["key_id"]: k for k in json.load(open(sys.argv[1]))["keys"]}
k = keys[sys.argv[2]]
assert k["role"] == "customer" and k["customer"] == sys.argv[3] and k["status"] == "active", k
assert k["label"] == "portal" and k["created_by"] == "cli:alice" and k["revoked_at"] is None, k
assert len(keys) == 2
PY

# Revoke: audited; a second time and an unknown key are refused.
USER=bob "$tally" key revoke "$key_id" >"$work/revoke" || fail "revoke: $(cat "$work/revoke")"
expect 1 "revoke twice" "$tally" key revoke "$key_id"
grep -q "already revoked" "$work/out" || fail "no reason: $(cat "$work/out")"
expect 1 "revoke an unknown key" "$tally" key revoke 000000000000
"$tally" key list --format json | python3 -c '
import json, sys
k = {k["key_id"]: k for k in json.load(sys.stdin)["keys"]}[sys.argv[1]]
assert k["status"] == "revoked" and k["revoked_at"], k' "$key_id" || fail "the revoked key is not listed as revoked"

# Audit: newest first, who did what.
"$tally" audit --format json >"$work/audit.json" || fail "audit: $(cat "$work/audit.json")"
python3 - "$work/audit.json" "$key_id" <<'PY' || fail "audit json: $(cat "$work/audit.json")"
import json, sys
rows = json.load(open(sys.argv[1]))["audit"]
assert [r["action"] for r in rows] == ["key.revoke", "key.create", "key.create"], rows
assert rows[0]["actor"] == "cli:bob" and rows[0]["role"] == "operator" and rows[0]["target"] == sys.argv[2], rows
assert rows[2]["actor"] == "cli:alice" and rows[2]["detail"]["role"] == "customer", rows
PY
"$tally" audit --limit 1 >"$work/audit" || fail "audit: $(cat "$work/audit")"
grep -q "key.revoke" "$work/audit" || fail "audit table: $(cat "$work/audit")"
if grep -q "key.create" "$work/audit"; then fail "--limit 1 showed more than one row"; fi
(unset USER; "$tally" key revoke "${secret2:4:12}" >/dev/null) || fail "revoke without USER"
[ "$(q "SELECT actor FROM audit_log ORDER BY audit_id DESC LIMIT 1")" = "cli:unknown" ] || fail "actor without USER"

# The database refuses to rewrite history.
if q "DELETE FROM audit_log" 2>/dev/null; then fail "the audit log could be deleted"; fi
if q "UPDATE audit_log SET actor = 'x'" 2>/dev/null; then fail "the audit log could be updated"; fi
if q "TRUNCATE audit_log" 2>/dev/null; then fail "the audit log could be truncated"; fi
[ "$(q "SELECT count(*) FROM audit_log")" = 4 ] || fail "audit rows lost"

"$psql" "$server" -qc "DROP DATABASE e2e_keys WITH (FORCE)" >/dev/null
echo "key e2e ok"
