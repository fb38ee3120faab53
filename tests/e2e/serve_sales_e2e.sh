#!/usr/bin/env bash
# The sales routes of `tally serve` end to end on the bundled example data
# (dev Kafka, the pg fixture's PostgreSQL, `tally` processes, curl):
# validate a broken plan (the problems, line and column, are those `tally
# plan validate` prints); publish a new plan, see it in GET /v1/plans, its
# price table equals cells computed by hand; publish it again (unchanged)
# and with another body (409); the audit row of the publish; a quote equals
# `tally quote ... --format json` byte for byte; an unknown customer (404)
# and an invalid candidate (400); hostile bodies; customer and finance keys
# refused where they must be.
# Usage: serve_sales_e2e.sh TALLY SOURCE_DIR PG_STATE
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
# shellcheck source=lib.sh
. "$src/tests/e2e/lib.sh"
e2e_begin
fail() {
  echo "FAIL: $*"
  [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log"
  exit 1
}
q() { "$psql" "$TALLY_DATABASE_URL" -qAt -c "$1"; }

e2e_example_ledger "$server" e2e_serve_sales "$work"

key() {  # role [customer]: prints the new key's secret
  local args=(--role "$1")
  [ $# -gt 1 ] && args+=(--customer "$2")
  "$tally" key create "${args[@]}" | grep -E '^tly_' || fail "tally key create $*"
}
key_c=$(key customer cust_volc_a)
key_f=$(key finance)
key_s=$(key sales)
key_adm=$(key admin)

port=$(e2e_free_port)
base=http://127.0.0.1:$port
"$tally" serve --listen "127.0.0.1:$port" --threads 2 --rate-limit 100 --rate-burst 200 \
  >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/healthz" >/dev/null || fail "tally serve did not start: $(cat "$work/serve.out")"

# call METHOD KEY PATH [curl args...]: the body in $work/body; prints the status.
call() {
  local method=$1 k=$2 path=$3
  shift 3
  local auth=()
  [ -n "$k" ] && auth=(-H "Authorization: Bearer $k")
  curl -sS -o "$work/body" -w '%{http_code}' -X "$method" "${auth[@]}" "$@" "$base$path"
}
expect() {  # status method key path [curl args...]
  local want=$1
  shift
  local got
  got=$(call "$@")
  [ "$got" = "$want" ] || fail "$1 $3: status $got, want $want: $(head -c 400 "$work/body")"
}
json() { python3 -c "import json,sys; d=json.load(open('$work/body')); print($1)"; }

# --- Roles: customer keys get 403 on every sales route; finance only reads plans.
echo '{}' >"$work/empty.json"
for route in "POST /v1/plans:validate" "POST /v1/plans" "GET /v1/plans" "GET /v1/plans/deepseek" "POST /v1/quotes"; do
  set -- $route
  data=()
  [ "$1" = POST ] && data=(--data-binary @"$work/empty.json")
  expect 401 "$1" "" "$2" "${data[@]}"
  expect 403 "$1" "$key_c" "$2" "${data[@]}"
done
for route in "POST /v1/plans:validate" "POST /v1/plans" "POST /v1/quotes"; do
  set -- $route
  expect 403 "$1" "$key_f" "$2" --data-binary @"$src/deploy/plans/deepseek.yaml"
done
expect 200 GET "$key_f" /v1/plans
expect 200 GET "$key_f" /v1/plans/deepseek

# --- Validate: a broken plan's problems are those `tally plan validate` prints.
cat >"$work/plan.yaml" <<'YAML'
plan: broken
versions:
  - version: v1
    effective_from: 2025-12-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    models:
      m1:
        bands:
          - up_to: 32000
            rates: {input: "1.00", output: "x"}
          - up_to: 1000
            rates: {input: "2.00", output: "8.00"}
        batch: {multiplier: "-1"}
YAML
"$tally" plan validate "$work/plan.yaml" 2>"$work/cli.err" && fail "the broken plan validated"
expect 200 POST "$key_s" /v1/plans:validate --data-binary @"$work/plan.yaml" -H 'Content-Type: application/yaml'
python3 - "$work/body" "$work/cli.err" "$work/plan.yaml" <<'PY' || fail "validate problems differ from the CLI's: $(cat "$work/body")"
import json, re, sys
body = json.load(open(sys.argv[1]))
assert body["ok"] is False and body["plan"] is None and body["versions"] == [], body
cli = []
for line in open(sys.argv[2], encoding="utf-8"):
    m = re.match(re.escape(sys.argv[3]) + r":(\d+):(\d+): error: (.*)$", line.rstrip("\n"))
    if m:
        cli.append((int(m.group(1)), int(m.group(2)), m.group(3)))
api = [(p["line"], p["column"], p["message"]) for p in body["problems"]]
assert all(p["severity"] == "error" and isinstance(p["line"], int) for p in body["problems"])
assert len(cli) >= 2, cli
assert api == cli, (api, cli)
PY
expect 200 POST "$key_s" /v1/plans:validate --data-binary @"$src/deploy/plans/deepseek.yaml"
[ "$(json 'd["ok"], d["plan"], len(d["versions"]), d["problems"]')" = "True deepseek 3 []" ] || fail "valid plan: $(cat "$work/body")"

# Hostile bodies: a 400 or problems, never a crash or a hang; the server lives on.
printf 'plan: \xff\xfe\n' >"$work/bad_utf8"
expect 400 POST "$key_s" /v1/plans:validate --data-binary @"$work/bad_utf8"
printf 'plan: a\000b\n' >"$work/nul"
expect 400 POST "$key_s" /v1/plans:validate --data-binary @"$work/nul"
python3 - "$work/bomb" <<'PY'
import sys
lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
for i in range(1, 26):
    p, c = chr(ord("a") + i - 1), chr(ord("a") + i)
    lines.append(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]")
lines.append("plan: *z")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
got=$(timeout 20 curl -sS -o "$work/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $key_s" \
  --data-binary @"$work/bomb" "$base/v1/plans:validate") || fail "a YAML bomb hung the server"
case $got in 200) [ "$(json 'd["ok"]')" = False ] || fail "the bomb validated" ;; 400) ;; *) fail "bomb: $got" ;; esac
python3 -c "print('[' * 200000)" >"$work/deep"
got=$(timeout 20 curl -sS -o "$work/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $key_s" \
  --data-binary @"$work/deep" "$base/v1/plans:validate") || fail "deep nesting hung the server"
[ "$got" = 200 ] || [ "$got" = 400 ] || fail "deep nesting: $got"
sed 's/"0.27"/"999999999999999999999999999999999999999"/' "$src/deploy/plans/deepseek.yaml" >"$work/huge.yaml"
expect 200 POST "$key_s" /v1/plans:validate --data-binary @"$work/huge.yaml"
[ "$(json 'd["ok"]')" = False ] || fail "a huge rate validated"
expect 200 "GET" "" /healthz

# --- Publish a new plan; see it listed with its price table.
cat >"$work/new.yaml" <<'YAML'
plan: sales-e2e
name: "Sales e2e <b>plan</b>"
versions:
  - version: "v1"
    effective_from: 2025-12-01T00:00:00+08:00
    currency: CNY
    time_zone: Asia/Shanghai
    rates_per: 1000000
    models:
      m1:
        bands:
          - up_to: 32000
            rates: {input: "1.00", cached_input: "0.20", output: "4.00"}
            output_conditions:
              - up_to: 200
                rates: {output: "2.00"}
          - up_to: 128000
            rates: {input: "2.00", cached_input: "0.20", output: "8.00"}
        batch: {multiplier: "0.5", cache_hits: full_cache_rate}
YAML
expect 200 POST "$key_s" /v1/plans --data-binary @"$work/new.yaml"
[ "$(json 'd["plan"], d["published"], d["unchanged"]')" = "sales-e2e ['v1'] []" ] || fail "publish: $(cat "$work/body")"
expect 200 GET "$key_s" /v1/plans
python3 - "$work/body" <<'PY' || fail "GET /v1/plans: $(cat "$work/body")"
import json, sys
plans = {p["plan"]: p for p in json.load(open(sys.argv[1]))["plans"]}
assert set(plans) == {"deepseek", "doubao-seed-1.6", "gemini-2.5", "qwen-plus", "sales-e2e"}, set(plans)
new = plans["sales-e2e"]
assert new["name"] == "Sales e2e <b>plan</b>" and new["customers_subscribed"] == 0, new
assert new["versions"] == [{"id": "v1", "effective_from": "2025-11-30T16:00:00Z", "effective_until": None,
                            "currency": "CNY", "zone": "Asia/Shanghai", "models": 1}], new["versions"]
assert plans["doubao-seed-1.6"]["customers_subscribed"] == 2, plans["doubao-seed-1.6"]
assert plans["deepseek"]["customers_subscribed"] == 1
assert [v["id"] for v in plans["deepseek"]["versions"]] == ["2025-02-off-peak", "2025-09-v3.1", "2025-09-v3.2-exp"]
PY
expect 200 GET "$key_s" /v1/plans/sales-e2e
python3 - "$work/body" <<'PY' || fail "price table: $(head -c 2000 "$work/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["plan"] == "sales-e2e" and len(d["versions"]) == 1
v = d["versions"][0]
assert (v["id"], v["currency"], v["zone"]) == ("v1", "CNY", "Asia/Shanghai"), v
got = {}
for c in v["cells"]:
    assert c["model"] == "m1" and c["window"] == "" and c["thinking"] is False, c
    rates = {}
    for r in c["rates"]:
        assert r["per"] == 1000000, r
        rates[r["unit"]] = r["rate"]
    got[(c["band"], c["output_condition"], c["batch"])] = rates
def cell(i, ci, o, batch=False):  # input, cached_input, output; cache writes fall back to input
    return {"input": i, "cached_input": ci, "cache_write": i, "cache_write_1h": i, "output": o}
want = {
    ("0-32000", "output<=200", False): cell("1", "0.2", "2"),
    ("0-32000", "output<=200", True): cell("0.5", "0.2", "1", True),   # batch halves; cache hits keep 0.2
    ("0-32000", "", False): cell("1", "0.2", "4"),
    ("0-32000", "", True): cell("0.5", "0.2", "2", True),
    ("32001-128000", "", False): cell("2", "0.2", "8"),
    ("32001-128000", "", True): cell("1", "0.2", "4", True),
}
assert got == want, (got, want)
PY
expect 200 GET "$key_s" "/v1/plans/deepseek?at=2025-03-01T00:00:00Z"
[ "$(json '[v["id"] for v in d["versions"]]')" = "['2025-02-off-peak']" ] || fail "at=: $(head -c 300 "$work/body")"
expect 404 GET "$key_s" "/v1/plans/nope"
expect 400 GET "$key_s" "/v1/plans/deepseek?at=soon"

# Again: unchanged, nothing audited. Another body for v1: 409.
expect 200 POST "$key_adm" /v1/plans --data-binary @"$work/new.yaml"
[ "$(json 'd["published"], d["unchanged"]')" = "[] ['v1']" ] || fail "publish again: $(cat "$work/body")"
sed 's/"4.00"/"5.00"/' "$work/new.yaml" >"$work/changed.yaml"
expect 409 POST "$key_s" /v1/plans --data-binary @"$work/changed.yaml"
json 'd["error"]["message"]' | grep -q "already published with different prices" || fail "409: $(cat "$work/body")"
expect 400 POST "$key_s" /v1/plans --data-binary @"$work/plan.yaml"
[ "$(json 'len(d["problems"]) >= 2')" = True ] || fail "invalid publish: $(cat "$work/body")"
[ "$(q "SELECT count(*) FROM plan_versions WHERE plan IN ('broken')")" = 0 ] || fail "an invalid plan was stored"

# The audit log: one row, for the publish that stored something.
sales_id=$(q "SELECT key_id FROM api_keys WHERE role = 'sales'")
[ "$(q "SELECT actor || '|' || role || '|' || target || '|' || (detail->'published')::text FROM audit_log WHERE action = 'plan.publish'")" \
  = "key:$sales_id|sales|sales-e2e|[\"v1\"]" ] || fail "audit rows: $(q "SELECT * FROM audit_log")"

# --- Quotes: the API answers what `tally quote --format json` writes.
sed -e 's/^plan: doubao-seed-1.6/plan: doubao-promo/' -e 's/"8.00"/"6.00"/g' -e 's/"0.80"/"80.00"/g' \
  "$src/deploy/plans/doubao-seed-1.6.yaml" >"$work/candidate.yaml"
rc=0
"$tally" quote --customer cust_volc_a --period 2025-11 --plan "$work/candidate.yaml" --format json \
  >"$work/cli_quote.json" 2>"$work/cli_quote.err" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "tally quote exited $rc: $(cat "$work/cli_quote.err")"
python3 - "$work/candidate.yaml" "$work/quote_body.json" <<'PY'
import json, sys
json.dump({"plan": open(sys.argv[1], encoding="utf-8").read(), "customer": "cust_volc_a", "period": "2025-11"},
          open(sys.argv[2], "w"))
PY
expect 200 POST "$key_s" /v1/quotes --data-binary @"$work/quote_body.json" -H 'Content-Type: application/json'
cmp -s "$work/body" "$work/cli_quote.json" || fail "the API's quote differs from tally quote's: $(diff <(python3 -m json.tool "$work/body") <(python3 -m json.tool "$work/cli_quote.json") | head -20)"
[ "$(json 'd["customers"][0]["compared"], d["customers"][0]["total"]["difference"] != "0.00"')" = "True True" ] \
  || fail "the quote compared nothing: $(head -c 600 "$work/body")"
python3 - "$work/quote_body.json" "$work/nobody.json" "$work/badplan.json" "$work/plan.yaml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
json.dump(dict(d, customer="cust_nobody"), open(sys.argv[2], "w"))
json.dump(dict(d, plan=open(sys.argv[4]).read()), open(sys.argv[3], "w"))
PY
expect 404 POST "$key_s" /v1/quotes --data-binary @"$work/nobody.json"
expect 400 POST "$key_s" /v1/quotes --data-binary @"$work/badplan.json"
[ "$(json 'd["error"]["code"], len(d["problems"]) >= 2')" = "invalid_plan True" ] || fail "bad candidate: $(cat "$work/body")"
expect 400 POST "$key_s" /v1/quotes --data-binary '{"plan":"x","customer":"cust_volc_a"}'
expect 403 POST "$key_f" /v1/quotes --data-binary @"$work/quote_body.json"

# SIGTERM: a clean stop.
kill -TERM "$serve_pid"
for _ in $(seq 100); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$serve_pid" 2>/dev/null && fail "tally serve did not stop on SIGTERM"
wait "$serve_pid" || fail "tally serve exited $? on SIGTERM"
grep -q "$key_s" "$work/serve.log" && fail "a secret is in the log"
echo "serve sales e2e ok"
