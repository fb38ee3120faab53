#!/usr/bin/env bash
# The finance routes of `tally serve` end to end, through curl only, on the
# example ledger (tests/e2e/lib.sh) with December 2025's usage and a few bad
# messages produced on top: an invoice run of 2025-12, the drafts listed,
# one finalized by id and the rest by period, a second finalize refused
# (409), a void (its credit note's total is the invoice's), a partial credit
# note and one above what is left (409), the credit note's PDF (pdftotext)
# and CSV, the export CSV, the margin by customer equal to `tally margin
# --format json` to the last digit, the dead letters counted by reason equal
# to the table's, and the raw bytes of each bad message equal to what was
# produced; `tally audit` names the key and action of every write; customer
# and sales keys get 403 on every finance route.
# Usage: serve_finance_e2e.sh TALLY SOURCE_DIR PG_STATE
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

e2e_example_ledger "$server" e2e_serve_finance "$work"
"$tally" cost publish "$src"/deploy/costs/*.yaml >/dev/null

# December 2025: the November events again a month later (new ids), and
# messages that cannot be billed, each on a line of its own.
sed -e 's/"2025-11-/"2025-12-/g' -e 's/"id": "/"id": "dec-/' "$src"/deploy/events/{doubao,gemini,qwen}.jsonl \
  >"$work/december.jsonl"
cat >"$work/bad.jsonl" <<'EOF'
this line is not JSON {
{"specversion": "1.0", "id": "bad-0002", "source": "gw-e2e", "type": "llm.call", "time": "2025-12-03T10:00:00Z", "subject": "cust_nobody", "data": {"model": "doubao-seed-1.6", "input_tokens": 10, "output_tokens": 1}}
{"specversion": "1.0", "id": "bad-0003", "source": "gw-e2e", "type": "llm.call", "time": "2025-12-03T10:00:00Z", "subject": "cust_volc_a", "data": {"model": "no-such-model", "input_tokens": 10, "output_tokens": 1}}
{"specversion": "1.0", "id": "bad-0004", "source": "gw-e2e", "type": "llm.call", "time": "2025-12-03T10:00:00Z", "subject": "cust_volc_a", "data": {"model": "doubao-seed-1.6", "input_tokens": -5, "output_tokens": 1}}
EOF
"$tally" produce --bootstrap-file "$work/boot" --file "$work/december.jsonl" >/dev/null
"$tally" produce --bootstrap-file "$work/boot" --file "$work/bad.jsonl" >/dev/null
"$tally" consume --bootstrap-file "$work/boot" --exit-when-idle 2 --log-level error >"$work/consume2.log" 2>&1 || true
[ "$(q "SELECT count(*) FROM dead_letters WHERE position(convert_to('\"bad-000', 'UTF8') IN raw) > 0
        OR raw = convert_to('this line is not JSON {', 'UTF8')")" = 4 ] ||
  fail "the 4 bad messages are not dead letters: $(q "SELECT reason_code, reason FROM dead_letters")"

key() {  # role [customer]: prints the new key's secret
  local args=(--role "$1")
  [ $# -gt 1 ] && args+=(--customer "$2")
  "$tally" key create "${args[@]}" | grep -E '^tly_' || fail "tally key create $*"
}
key_f=$(key finance)
key_x=$(key admin)
key_a=$(key customer cust_volc_a)
key_s=$(key sales)
kid() { echo "$1" | cut -d_ -f2; }  # tly_<key id>_<random>

port=$(e2e_free_port)
base=http://127.0.0.1:$port
"$tally" serve --listen "127.0.0.1:$port" --threads 2 >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/healthz" >/dev/null || fail "tally serve did not start: $(cat "$work/serve.out")"

# call KEY METHOD PATH [BODY]: the body in $work/body, headers in
# $work/headers; prints the status.
call() {
  local k=$1 method=$2 path=$3 body=${4-}
  local args=(-sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $k")
  [ "$method" = POST ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  curl "${args[@]}" "$base$path"
}
expect() {  # status key method path [body]
  local want=$1
  shift
  local got
  got=$(call "$@")
  [ "$got" = "$want" ] || fail "$2 $3: status $got, want $want: $(head -c 400 "$work/body")"
}
header() { grep -i "^$1:" "$work/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
json() { python3 -c "import json,sys; d=json.load(open('$work/body')); print($1)"; }

# Roles: customer and sales keys get 403 on every finance route.
routes=(
  "POST /v1/invoice-runs"
  "POST /v1/invoices:finalize"
  "POST /v1/invoices/1/finalize"
  "POST /v1/invoices/1/void"
  "GET /v1/invoices/1/credit-notes"
  "POST /v1/invoices/1/credit-notes"
  "GET /v1/credit-notes/CN-2026-000001"
  "GET /v1/credit-notes/CN-2026-000001.pdf"
  "GET /v1/credit-notes/CN-2026-000001.csv"
  "GET /v1/exports/invoices.csv"
  "GET /v1/margin?period=2025-12"
  "GET /v1/dead-letters"
  "GET /v1/dead-letters/1.raw"
)
for r in "${routes[@]}"; do
  read -r method path <<<"$r"
  for k in "$key_a" "$key_s"; do
    expect 403 "$k" "$method" "$path" '{"period":"2025-12","reason":"x","subtotal":"1.00"}'
    [ "$(json 'd["error"]["code"]')" = forbidden ] || fail "$r: not a forbidden body"
  done
done
[ "$(q "SELECT count(*) FROM invoices WHERE period = '2025-12'")" = 0 ] || fail "a 403 ran invoices"
echo "ok: customer and sales keys get 403 on all ${#routes[@]} finance routes"

# Bad input.
expect 400 "$key_f" POST /v1/invoice-runs '{"period":"2025-13"}'
expect 400 "$key_f" POST /v1/invoice-runs '{"period":"2025-12","extra":"1"}'
expect 400 "$key_f" POST /v1/invoice-runs '{"period":202512}'
expect 400 "$key_f" POST /v1/invoice-runs 'not json'

# The run.
expect 200 "$key_f" POST /v1/invoice-runs '{"period":"2025-12"}'
run_id=$(json 'd["run_id"]')
drafts=$(json 'd["drafts"]')
[ "$drafts" -ge 3 ] || fail "the run wrote $drafts drafts: $(cat "$work/body")"
[ "$drafts" = "$(q "SELECT count(*) FROM invoices WHERE period = '2025-12' AND status = 'draft'")" ] ||
  fail "drafts in the answer differ from the table"
[ "$(json 'd["margin_report_id"] is not None')" = True ] || fail "no margin report with cost cards published"
[ "$run_id" = "$(q "SELECT max(run_id) FROM invoice_runs")" ] || fail "run_id"

# Drafts listed; one finalized by id, the rest by period.
expect 200 "$key_f" GET "/v1/invoices?period=2025-12&status=draft"
mapfile -t ids < <(json '"\n".join(str(i["invoice_id"]) for i in d["invoices"])')
[ "${#ids[@]}" = "$drafts" ] || fail "listed ${#ids[@]} drafts, the run wrote $drafts"
expect 200 "$key_f" POST "/v1/invoices/${ids[0]}/finalize" ''
first=$(json 'd["finalized"][0]["number"]')
[ "$(q "SELECT status FROM invoices WHERE number = '$first'")" = finalized ] || fail "$first is not finalized"
expect 409 "$key_f" POST "/v1/invoices/${ids[0]}/finalize" ''
json 'd["error"]["message"]' | grep -q "finalized already" || fail "second finalize: $(cat "$work/body")"
expect 409 "$key_f" POST "/v1/invoices/$first/finalize" ''
expect 404 "$key_f" POST /v1/invoices/999999/finalize ''
expect 200 "$key_f" POST /v1/invoices:finalize '{"period":"2025-12"}'
[ "$(json 'len(d["finalized"])')" = $((drafts - 1)) ] || fail "finalize by period: $(cat "$work/body")"
[ "$(q "SELECT count(*) FROM invoices WHERE period = '2025-12' AND status = 'finalized'")" = "$drafts" ] ||
  fail "not every December invoice is finalized"
echo "ok: run $run_id wrote $drafts drafts; one finalized by id ($first), the rest by period; a second finalize is 409"

# The two finalized invoices of the largest subtotals.
mapfile -t big < <(q "SELECT number FROM invoices WHERE period = '2025-12' AND status = 'finalized' AND subtotal > 0
                     ORDER BY subtotal DESC, number LIMIT 2")
[ "${#big[@]}" = 2 ] || fail "need two December invoices above zero"
voided=${big[0]} credited=${big[1]}

# Void: the credit note is for the whole invoice.
expect 400 "$key_f" POST "/v1/invoices/$voided/void" '{}'
expect 400 "$key_f" POST "/v1/invoices/$voided/void" '{"reason":""}'
expect 200 "$key_x" POST "/v1/invoices/$voided/void" '{"reason":"e2e: billed twice"}'
void_cn=$(json 'd["number"]')
[ "$(json 'd["total"]')" = "$(q "SELECT total FROM invoices WHERE number = '$voided'")" ] ||
  fail "the void's credit note total is not the invoice's"
[ "$(q "SELECT status FROM invoices WHERE number = '$voided'")" = void ] || fail "$voided is not void"
expect 409 "$key_f" POST "/v1/invoices/$voided/void" '{"reason":"again"}'
expect 409 "$key_f" POST "/v1/invoices/$voided/credit-notes" '{"subtotal":"0.10","reason":"x"}'

# A partial credit note, and one above what is left.
expect 400 "$key_f" POST "/v1/invoices/$credited/credit-notes" '{"subtotal":"0.001","reason":"x"}'
expect 400 "$key_f" POST "/v1/invoices/$credited/credit-notes" '{"subtotal":"-1","reason":"x"}'
expect 200 "$key_f" POST "/v1/invoices/$credited/credit-notes" '{"subtotal":"0.01","reason":"e2e: goodwill"}'
part_cn=$(json 'd["number"]')
[ "$(json 'd["subtotal"]')" = 0.01 ] || fail "partial credit subtotal: $(cat "$work/body")"
[ "$(json 'd["kind"]')" = partial ] || fail "partial credit kind"
expect 409 "$key_f" POST "/v1/invoices/$credited/credit-notes" '{"subtotal":"99999999.00","reason":"too much"}'
json 'd["error"]["message"]' | grep -q "left uncredited" || fail "over-credit message: $(cat "$work/body")"
expect 200 "$key_f" GET "/v1/invoices/$credited/credit-notes"
[ "$(json '[c["number"] for c in d["credit_notes"]]')" = "['$part_cn']" ] || fail "credit notes of $credited"
echo "ok: void $voided ($void_cn, its total), partial credit of $credited ($part_cn), over-credit 409"

# The credit note as JSON, PDF and CSV.
expect 200 "$key_f" GET "/v1/credit-notes/$part_cn"
[ "$(json 'd["invoice_number"]')" = "$credited" ] || fail "credit note JSON: $(cat "$work/body")"
expect 404 "$key_f" GET /v1/credit-notes/CN-1999-000001
expect 200 "$key_f" GET "/v1/credit-notes/$part_cn.pdf"
[ "$(header Content-Type)" = application/pdf ] || fail "credit note PDF content type"
header Content-Disposition | grep -q "attachment; filename=\"$part_cn.pdf\"" || fail "PDF disposition"
pdftotext "$work/body" "$work/cn.txt" || fail "the credit note PDF does not parse"
for text in "$part_cn" "$credited" "e2e: goodwill" "0.01"; do
  grep -qF "$text" "$work/cn.txt" || fail "the credit note PDF lacks '$text': $(head -c 600 "$work/cn.txt")"
done
expect 200 "$key_f" GET "/v1/credit-notes/$part_cn.csv"
"$tally" invoice export "$part_cn" --format csv >"$work/cn_cli.csv"
cmp -s "$work/body" "$work/cn_cli.csv" || fail "credit note CSV differs from tally invoice export's"
echo "ok: credit note JSON, PDF (pdftotext) and CSV (= tally invoice export)"

# The export CSV: the CLI's bytes.
expect 400 "$key_f" GET "/v1/exports/invoices.csv?status=paid"
expect 200 "$key_f" GET "/v1/exports/invoices.csv?period=2025-12"
header Content-Disposition | grep -q 'attachment; filename="invoices-2025-12.csv"' || fail "export disposition"
"$tally" invoice export --period 2025-12 --format csv >"$work/export_cli.csv"
cmp -s "$work/body" "$work/export_cli.csv" || fail "export CSV differs from tally invoice export --period's"
[ "$(grep -c "$credited" "$work/body")" -ge 1 ] || fail "export lacks $credited"
echo "ok: export CSV of 2025-12 equals tally invoice export's ($(wc -l <"$work/body") lines)"

# Margin: the CLI's rows to the last digit.
expect 400 "$key_f" GET "/v1/margin?period=2025-12&by=week"
expect 400 "$key_f" GET "/v1/margin"
for by in customer model day; do
  expect 200 "$key_f" GET "/v1/margin?period=2025-12&by=$by"
  cp "$work/body" "$work/margin_api.json"
  "$tally" margin --period 2025-12 --by "$by" --format json >"$work/margin_cli.json" 2>/dev/null || true
  python3 - "$work/margin_api.json" "$work/margin_cli.json" <<'EOF' || fail "margin by $by differs from tally margin"
import json, sys
api = json.load(open(sys.argv[1]))
cli = json.load(open(sys.argv[2]))
assert api["rows"], "no margin rows"
assert api["rows"] == cli["rows"], (api["rows"], cli["rows"])
for r in api["rows"]:
    for f in ("revenue", "cost", "margin"):
        assert r[f] is None or isinstance(r[f], str), r
EOF
done
expect 200 "$key_f" GET "/v1/margin?period=2025-12&by=customer"
python3 - "$work/body" <<'EOF' || fail "margin totals are not the rows' sums"
import json, sys
from decimal import Decimal
d = json.load(open(sys.argv[1]))
for t in d["totals"]:
    rows = [r for r in d["rows"] if r["currency"] == t["currency"]]
    assert Decimal(t["revenue"]) == sum(Decimal(r["revenue"]) for r in rows), t
    assert t["calls"] == sum(r["calls"] for r in rows), t
EOF
echo "ok: margin by customer, model and day equals tally margin --format json"

# Dead letters: counts by reason as the table has them, the page, the raw bytes.
expect 400 "$key_f" GET "/v1/dead-letters?reason=nope"
expect 400 "$key_f" GET "/v1/dead-letters?limit=501"
expect 200 "$key_f" GET "/v1/dead-letters?limit=500"
q "SELECT reason_code || ' ' || count(*) FROM dead_letters GROUP BY reason_code ORDER BY 1" >"$work/dl_db"
json '"\n".join(c["reason"] + " " + str(c["count"]) for c in sorted(d["counts"], key=lambda c: c["reason"]) if c["count"] > 0)' \
  >"$work/dl_api"
cmp -s "$work/dl_db" "$work/dl_api" || fail "dead letter counts: api $(cat "$work/dl_api") db $(cat "$work/dl_db")"
[ "$(json 'd["total"]')" = "$(q "SELECT count(*) FROM dead_letters")" ] || fail "dead letter total"
[ "$(json 'len(d["dead_letters"])')" = "$(q "SELECT count(*) FROM dead_letters")" ] || fail "dead letter page"
[ "$(json 'd["dead_letters"][0]["id"]')" = "$(q "SELECT max(dead_letter_id) FROM dead_letters")" ] || fail "newest first"
expect 200 "$key_f" GET "/v1/dead-letters?reason=unknown_customer"
[ "$(json 'set(e["reason_code"] for e in d["dead_letters"])')" = "{'unknown_customer'}" ] || fail "reason filter"
# Each bad line's raw bytes, found by its offset, are the line as produced.
n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%s' "$line" >"$work/line"
  id=$(echo "SELECT dead_letter_id FROM dead_letters WHERE raw = convert_to(:'raw', 'UTF8');" |
    "$psql" "$TALLY_DATABASE_URL" -qAt -v "raw=$line")
  [ -n "$id" ] || fail "bad line $n is not a dead letter"
  expect 200 "$key_f" GET "/v1/dead-letters/$id.raw"
  [ "$(header Content-Type)" = application/octet-stream ] || fail "raw content type"
  header Content-Disposition | grep -q "attachment; filename=\"dead-letter-$id.raw\"" || fail "raw disposition"
  cmp -s "$work/body" "$work/line" || fail "dead letter $id's bytes differ from bad line $n"
done <"$work/bad.jsonl"
# The page walks back with the cursor.
expect 200 "$key_f" GET "/v1/dead-letters?limit=2"
next=$(json 'd["next_before"]')
expect 200 "$key_f" GET "/v1/dead-letters?limit=2&before=$next"
[ "$(json 'all(e["id"] < '"$next"' for e in d["dead_letters"])')" = True ] || fail "the cursor"
expect 404 "$key_f" GET /v1/dead-letters/999999.raw
echo "ok: dead letters counted by reason as in the table; $n raw messages byte for byte; the cursor"

# The audit log names the key and the action of every write.
"$tally" audit --format json --limit 1000 >"$work/audit.json"
python3 - "$work/audit.json" "$(kid "$key_f")" "$(kid "$key_x")" "$drafts" "$voided" "$part_cn" <<'EOF' ||
import json, sys
rows = json.load(open(sys.argv[1]))["audit"]
kf, kx, drafts, voided, part_cn = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
def of(action):
    return [r for r in rows if r["action"] == action]
run = of("invoice.run")
assert len(run) == 1 and run[0]["actor"] == "key:" + kf and run[0]["role"] == "finance", run
assert run[0]["target"] == "2025-12" and run[0]["detail"]["period"] == "2025-12", run
fin = of("invoice.finalize")
assert len(fin) == drafts and all(r["actor"] == "key:" + kf for r in fin), fin
assert all(r["target"].startswith("INV-") for r in fin), fin
void = of("invoice.void")
assert len(void) == 1 and void[0]["actor"] == "key:" + kx and void[0]["role"] == "admin", void
assert void[0]["target"] == voided and void[0]["detail"]["reason"] == "e2e: billed twice", void
cn = of("credit_note.create")
assert len(cn) == 1 and cn[0]["target"] == part_cn and cn[0]["detail"]["subtotal"] == "0.01", cn
EOF
  fail "the audit log: $(head -c 2000 "$work/audit.json")"
echo "ok: tally audit shows each write with its key id, role and action"

grep -q "tly_" "$work/serve.log" && fail "a secret is in the log"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "tally serve exited $? on SIGTERM"
echo "ok: serve finance e2e"
