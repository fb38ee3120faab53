#!/usr/bin/env bash
# `tally plan show / diff / try` on every example plan, their errors, and
# `tally plan publish --dry-run` against the pg fixture's PostgreSQL: what
# would be published, its diff against the version in force before it and
# the customers on the plan, with the ledger unchanged afterwards (its plan
# versions, plan names, subscriptions and audit log, row by row).
# Usage: plan_tools_e2e.sh TALLY SOURCE_DIR PG_STATE
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
# shellcheck source=lib.sh
. "$src/tests/e2e/lib.sh"
e2e_begin
fail() {
  echo "FAIL: $*"
  exit 1
}
has() {  # file text: the file contains the text
  grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(head -c 3000 "$1")"
}
has_re() {  # file regex: a line of the file matches the extended regex
  grep -qE -- "$2" "$1" || fail "$1 has no line like '$2': $(head -c 3000 "$1")"
}

# show, diff and try on every example plan.
declare -A events=([deepseek]=deepseek [doubao-seed-1.6]=doubao [gemini-2.5-pro]=gemini [qwen-plus]=qwen)
for plan in "$src"/deploy/plans/*.yaml; do
  name=$(basename "$plan" .yaml)
  for format in table json csv; do
    "$tally" plan show "$plan" --format "$format" >"$work/show.$format" 2>"$work/err" ||
      fail "plan show $name --format $format: $(cat "$work/err")"
    [ -s "$work/show.$format" ] || fail "plan show $name --format $format printed nothing"
  done
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/show.json" || fail "plan show $name: not JSON"
  "$tally" plan diff "$plan" "$plan" >"$work/diff" || fail "plan diff $name $name"
  has "$work/diff" "no changes"
  ev="$src/deploy/events/${events[$name]}.jsonl"
  code=0
  "$tally" plan try "$plan" --events "$ev" >"$work/try" 2>"$work/err" || code=$?
  [ "$code" = 0 ] || [ "$code" = 3 ] || fail "plan try $name: exit $code: $(cat "$work/err")"
  has "$work/try" "call total"
done

# Hand-checked: deepseek's last two versions (the 2025-09-29 cut, written as
# changes: output x 0.25, 1.68 -> 0.42, -75 %), the V3.1 cut-over, and one
# qwen-plus call.
"$tally" plan diff "$src/deploy/plans/deepseek.yaml" >"$work/diff"
has_re "$work/diff" "deepseek-reasoner .* output +1\.68/1M +0\.42/1M +-75\.00%"
"$tally" plan diff "$src/deploy/plans/deepseek.yaml" --old-version 2025-02-off-peak --new-version 2025-09-v3.1 >"$work/diff"
has_re "$work/diff" "deepseek-reasoner .* output +2\.19/1M +1\.68/1M +-23\.29%"
"$tally" plan try "$src/deploy/plans/qwen-plus.yaml" --event '{"specversion":"1.0","id":"e1","source":"try","type":"llm.call","time":"2025-11-02T12:00:00+08:00","subject":"c","data":{"model":"qwen-plus","input_tokens":50000,"output_tokens":1000,"cached_input_tokens":20000,"thinking":true}}' >"$work/try"
has "$work/try" "cached_input: 20000 x 0.16 / 1000000 = 0.0032"
has "$work/try" "call total 0.0352 CNY"
"$tally" plan show "$src/deploy/plans/deepseek.yaml" --version 2025-02-off-peak >"$work/show"
has "$work/show" "16:30-00:30 UTC = 16:30-00:30 UTC (UTC+00:00 all year from 2025-02-26)"

# Errors: a bad flag value, a missing event, an invalid plan with file:line:column.
code=0; "$tally" plan show "$src/deploy/plans/deepseek.yaml" --format xml 2>"$work/err" || code=$?
[ "$code" = 2 ] || fail "--format xml: exit $code"
has "$work/err" "--format must be table, json or csv, not 'xml'"
code=0; "$tally" plan try "$src/deploy/plans/deepseek.yaml" 2>"$work/err" || code=$?
[ "$code" = 2 ] || fail "try without events: exit $code"
has "$work/err" "give --event"
printf 'plan: x\nversions:\n  - version: v1\n    effective_from: soon\n' >"$work/bad.yaml"
code=0; "$tally" plan show "$work/bad.yaml" 2>"$work/err" || code=$?
[ "$code" = 1 ] || fail "invalid plan: exit $code"
has "$work/err" "$work/bad.yaml:4:"
"$tally" plan show --help >"$work/help"
has "$work/help" "Examples:"
"$tally" plan try --help >"$work/help"
has "$work/help" "Examples:"
"$tally" plan diff --help >"$work/help"
has "$work/help" "Examples:"

# publish --dry-run on a ledger with the example plans and subscriptions.
db=e2e_plan_tools
"$psql" "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/$db
"$tally" migrate >/dev/null
"$tally" plan publish "$src"/deploy/plans/*.yaml >/dev/null
"$tally" customer import "$src/deploy/subscriptions.yaml" >/dev/null
snapshot() {
  "$psql" "$TALLY_DATABASE_URL" -qAt -c "SELECT plan, version, body_sha256 FROM plan_versions ORDER BY 1, 2" \
    -c "SELECT plan, name FROM plan_names ORDER BY 1" \
    -c "SELECT customer_id, valid_from, plan, terms FROM subscriptions ORDER BY 1, 2" \
    -c "SELECT count(*) FROM audit_log"
}
snapshot >"$work/before"
# A fourth deepseek version: deepseek-chat at half price, effective later,
# written as changes to the published 2025-09-v3.2-exp.
cp "$src/deploy/plans/deepseek.yaml" "$work/deepseek.yaml"
cat >>"$work/deepseek.yaml" <<'EOF'
  - version: "2026-01-cut"
    extends: "2025-09-v3.2-exp"
    effective_from: 2026-01-01T00:00:00Z
    changes:
      - {multiplier: "0.5", models: [deepseek-chat]}
EOF
"$tally" plan publish --dry-run "$work/deepseek.yaml" >"$work/dry" 2>"$work/err" || fail "dry run: $(cat "$work/err")"
has "$work/dry" "would publish 1 new version(s) (2026-01-cut); 3 already published (2025-02-off-peak, 2025-09-v3.1, 2025-09-v3.2-exp)"
has "$work/dry" "customers on plan deepseek: 1 with a subscription naming it, 1 of them on it now"
has "$work/dry" "new version 2026-01-cut from 2026-01-01T00:00:00Z against version 2025-09-v3.2-exp (published)"
# x 0.5: 0.28 -> 0.14, 0.028 -> 0.014, 0.42 -> 0.21: each -50 %.
has_re "$work/dry" "deepseek-chat .* input +0\.28/1M +0\.14/1M +-50\.00%"
has_re "$work/dry" "deepseek-chat .* cached_input +0\.028/1M +0\.014/1M +-50\.00%"
has_re "$work/dry" "deepseek-chat .* output +0\.42/1M +0\.21/1M +-50\.00%"
has "$work/dry" "dry run: nothing was written"
snapshot >"$work/after"
cmp -s "$work/before" "$work/after" || fail "the dry run changed the ledger: $(diff "$work/before" "$work/after")"
# A changed body of a published version is refused, as the real publish refuses it.
sed 's/output: "1.68"}/output: "1.69"}/' "$src/deploy/plans/deepseek.yaml" >"$work/changed.yaml"
code=0; "$tally" plan publish --dry-run "$work/changed.yaml" >"$work/dry" 2>"$work/err" || code=$?
[ "$code" = 1 ] || fail "dry run of a changed version: exit $code"
has "$work/dry" "dry run: nothing was written (1 file(s) would fail)"
has "$work/err" "the publish would be refused: plan deepseek version 2025-09-v3.1 is already published with different prices"
# diff against what is published.
"$tally" plan diff --published deepseek "$work/deepseek.yaml" >"$work/diff"
has "$work/diff" "version 2025-09-v3.2-exp (published) -> plan deepseek version 2026-01-cut"
has "$work/diff" "-50.00%"
# A file with only the new version, which extends a published one: read
# against the published plans (diff and dry run), as the publish reads it.
cat >"$work/cut-only.yaml" <<'EOF'
plan: deepseek
versions:
  - version: "2026-01-cut"
    extends: "2025-09-v3.2-exp"
    effective_from: 2026-01-01T00:00:00Z
    changes:
      - {multiplier: "0.5", models: [deepseek-chat]}
EOF
"$tally" plan diff --published deepseek "$work/cut-only.yaml" >"$work/diff" 2>"$work/err" || fail "diff of a version extending a published one: $(cat "$work/err")"
has "$work/diff" "version 2025-09-v3.2-exp (published) -> plan deepseek version 2026-01-cut"
has_re "$work/diff" "deepseek-chat .* output +0\.42/1M +0\.21/1M +-50\.00%"
"$tally" plan publish --dry-run "$work/cut-only.yaml" >"$work/dry" 2>"$work/err" || fail "dry run of a version extending a published one: $(cat "$work/err")"
has "$work/dry" "new version 2026-01-cut from 2026-01-01T00:00:00Z against version 2025-09-v3.2-exp (published)"
snapshot >"$work/after"
cmp -s "$work/before" "$work/after" || fail "the ledger changed: $(diff "$work/before" "$work/after")"
# The real publish still stores it.
"$tally" plan publish "$work/deepseek.yaml" >"$work/pub"
has "$work/pub" "1 published, 3 already published"
"$psql" "$server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
echo "plan tools e2e: ok"
