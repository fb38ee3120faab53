#!/usr/bin/env bash
# The finance workflow end to end, with the real pieces (dev Kafka, the pg
# fixture's PostgreSQL, `tally` processes) on the bundled example data:
#   consume -> invoice run (drafts equal `tally rate`'s invoices) -> finalize
#   (gapless numbers) -> verify -> the database refuses edits -> PDF and CSV
#   export -> a late event (adjustment on the next period = what `tally rate`
#   says the period costs now minus what was invoiced) -> a retroactive price
#   cut and `tally rerate` (a negative adjustment of exactly the cut) ->
#   void with a credit note and a replacement invoice.
# Usage: invoice_e2e.sh TALLY SOURCE_DIR PG_STATE
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
q() { "$psql" "$TALLY_DATABASE_URL" -qAt -c "$1"; }
# The subtotal of CUSTOMER's PERIOD invoice in a `tally rate --format json` file.
rated_subtotal() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(next(i["subtotal"] for i in d["invoices"] if i["customer"]==sys.argv[2] and i["period"]==sys.argv[3]))' "$@"
}

"$tally" dev-kafka --brokers 1 --topic usage:3 --bootstrap-file "$work/boot" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start"

"$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_invoice WITH (FORCE)" -c "CREATE DATABASE e2e_invoice" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/e2e_invoice
"$tally" migrate >/dev/null
"$tally" plan publish "$src"/deploy/plans/*.yaml >/dev/null
"$tally" cost publish "$src"/deploy/costs/*.yaml >/dev/null
"$tally" customer import "$src/deploy/subscriptions.yaml" >/dev/null
cat "$src"/deploy/events/*.jsonl >"$work/events.jsonl"
"$tally" produce --bootstrap-file "$work/boot" --file "$work/events.jsonl" >/dev/null
consume() { "$tally" consume --bootstrap-file "$work/boot" --exit-when-idle 2 --log-level error >"$work/consume.log" 2>&1 || true; }
consume
rate() {  # output-file plan-files...: `tally rate` on every event so far, as the ledger sees it
  local out=$1
  shift
  local args=()
  for p in "$@"; do args+=(--plan "$p"); done
  "$tally" rate "${args[@]}" --subscriptions "$src/deploy/subscriptions.yaml" --events "$work/events.jsonl" \
    --format json >"$out" 2>/dev/null || true
}
plans=("$src"/deploy/plans/*.yaml)
rate "$work/rate1.json" "${plans[@]}"

# Without an issuer a run refuses to start.
if "$tally" invoice run --period 2025-11 >"$work/out" 2>&1; then fail "a run without an issuer started"; fi
grep -q "no issuer" "$work/out" || fail "no reason given: $(cat "$work/out")"
"$tally" issuer set demo --name "示例云计算有限公司" --tax-id 91110000 --default >/dev/null

# Drafts: one per customer, equal to tally rate's invoices.
"$tally" invoice run --period 2025-11 >"$work/run1" || fail "invoice run: $(cat "$work/run1")"
grep -q "margin report" "$work/run1" || fail "the run wrote no margin report: $(cat "$work/run1")"
[ "$(q "SELECT count(*) FROM invoices WHERE status = 'draft'")" = 4 ] || fail "expected 4 drafts"
[ "$(q "SELECT count(*) FROM margin_rows r JOIN margin_reports m USING (report_id) WHERE m.invoice_run_id = 1")" -gt 0 ] ||
  fail "no margin rows for the run"
for c in cust_volc_a cust_volc_b cust_q cust_g; do
  want=$(rated_subtotal "$work/rate1.json" "$c" 2025-11)
  got=$(q "SELECT subtotal FROM invoices WHERE customer_id = '$c'")
  [ "$want" = "$got" ] || fail "$c: draft subtotal $got, tally rate $want"
done
# Re-running replaces the drafts.
"$tally" invoice run --period 2025-11 >/dev/null
[ "$(q "SELECT count(*) FROM invoices")" = 4 ] || fail "a re-run added drafts"

# Finalize: gapless numbers, verified hashes, frozen rows.
"$tally" invoice finalize --period 2025-11 >"$work/fin" || fail "finalize: $(cat "$work/fin")"
numbers=$(q "SELECT string_agg(right(number, 6), ',' ORDER BY number) FROM invoices")
[ "$numbers" = "000001,000002,000003,000004" ] || fail "numbers $numbers"
"$tally" invoice verify --period 2025-11 >"$work/verify" || fail "verify: $(cat "$work/verify")"
grep -q "4 invoice(s) and 0 credit note(s) verified, 0 mismatch" "$work/verify" || fail "verify: $(cat "$work/verify")"
if q "UPDATE invoices SET total = 0" 2>/dev/null; then fail "UPDATE of a finalized invoice was allowed"; fi
if q "DELETE FROM invoice_lines" 2>/dev/null; then fail "DELETE of finalized lines was allowed"; fi
if "$tally" invoice finalize --period 2025-11 | grep -q "[1-9] invoice(s) finalized"; then fail "finalized twice"; fi

# Exports: a PDF with the customer's Chinese name and the number; CSV rows.
volc_a=$(q "SELECT number FROM invoices WHERE customer_id = 'cust_volc_a'")
"$tally" invoice export "$volc_a" --format pdf --output "$work/a.pdf" >/dev/null
if command -v pdftotext >/dev/null; then
  pdftotext "$work/a.pdf" - >"$work/a.txt"
  grep -q "华东智能科技有限公司" "$work/a.txt" || fail "the PDF lacks the customer's name"
  grep -q "$volc_a" "$work/a.txt" || fail "the PDF lacks the invoice number"
fi
"$tally" invoice export --period 2025-11 --format csv --output "$work/nov.csv" >/dev/null
[ "$(($(wc -l <"$work/nov.csv") - 1))" = "$(q "SELECT count(*) FROM invoice_lines")" ] || fail "CSV rows != lines"

# A late November call of cust_volc_a: November stays as invoiced; December
# carries (November priced now) - (November invoiced).
late='{"specversion":"1.0","id":"late-1","source":"e2e","type":"llm.call","time":"2025-11-29T10:00:00Z","subject":"cust_volc_a","data":{"model":"doubao-seed-1.6","input_tokens":200000,"output_tokens":3000}}'
echo "$late" >"$work/late.jsonl"
cat "$work/late.jsonl" >>"$work/events.jsonl"
"$tally" produce --bootstrap-file "$work/boot" --file "$work/late.jsonl" >/dev/null
consume
rate "$work/rate2.json" "${plans[@]}"
"$tally" invoice run --period 2025-12 >"$work/run2" || fail "December run: $(cat "$work/run2")"
before=$(rated_subtotal "$work/rate1.json" cust_volc_a 2025-11)
after=$(rated_subtotal "$work/rate2.json" cust_volc_a 2025-11)
want=$(python3 -c "from decimal import Decimal as D; import sys; print(D(sys.argv[1]) - D(sys.argv[2]))" "$after" "$before")
got=$(q "SELECT l.amount_rounded FROM invoice_lines l JOIN invoices i USING (invoice_id) WHERE i.customer_id = 'cust_volc_a' AND i.period = '2025-12' AND l.kind = 'adjustment' AND l.adjusts_period = '2025-11'")
[ "$got" = "$want" ] || fail "late adjustment $got, want $after - $before = $want"
[ "$(q "SELECT subtotal FROM invoices WHERE number = '$volc_a'")" = "$before" ] || fail "the finalized invoice changed"
"$tally" invoice verify "$volc_a" >/dev/null || fail "verify after the late event"

# A retroactive price cut: a version from 2025-11-01 with input at half the
# list price, published now; `tally rerate` prices November again and
# December's draft carries the difference from what was invoiced.
cut="$work/doubao-cut.yaml"
{
  cat "$src/deploy/plans/doubao-seed-1.6.yaml"
  sed -n '/^  - version: "2025-06"/,$p' "$src/deploy/plans/doubao-seed-1.6.yaml" |
    sed -e 's/version: "2025-06"/version: "2025-11-cut"/' -e 's/effective_from: 2025-06-11T00:00:00+08:00/effective_from: 2025-11-01T00:00:00+08:00/' \
        -e 's/input: "0.80"/input: "0.40"/g' -e 's/thinking_table/thinking_table_cut/g'
} >"$cut"
"$tally" plan publish "$cut" >/dev/null || fail "the price cut did not publish"
"$tally" rerate --period 2025-11 >"$work/rerate" 2>&1 || fail "rerate: $(cat "$work/rerate")"
others=()
for p in "${plans[@]}"; do [ "$(basename "$p")" = doubao-seed-1.6.yaml ] || others+=("$p"); done
rate "$work/rate3.json" "$cut" "${others[@]}"
cut_subtotal=$(rated_subtotal "$work/rate3.json" cust_volc_a 2025-11)
want=$(python3 -c "from decimal import Decimal as D; import sys; print(D(sys.argv[1]) - D(sys.argv[2]))" "$cut_subtotal" "$before")
got=$(q "SELECT sum(l.amount_rounded) FROM invoice_lines l JOIN invoices i USING (invoice_id) WHERE i.customer_id = 'cust_volc_a' AND i.period = '2025-12' AND l.kind = 'adjustment'")
[ "$got" = "$want" ] || fail "after rerate the adjustment is $got, want $cut_subtotal - $before = $want ($(cat "$work/rerate"))"
python3 -c "from decimal import Decimal as D; import sys; sys.exit(0 if D(sys.argv[1]) < D(sys.argv[2]) else 1)" \
  "$cut_subtotal" "$after" || fail "the cut did not lower November: $cut_subtotal, list price $after"

# Void with a credit note; the period is invoiced again under a new number.
"$tally" invoice void "$volc_a" --reason "billing address was wrong" >"$work/void" || fail "void: $(cat "$work/void")"
grep -q "credit note CN-" "$work/void" || fail "no credit note: $(cat "$work/void")"
[ "$(q "SELECT status FROM invoices WHERE number = '$volc_a'")" = void ] || fail "not void"
"$tally" invoice run --period 2025-11 --customer cust_volc_a >/dev/null
"$tally" invoice finalize --period 2025-11 --customer cust_volc_a >"$work/fin2"
grep -q "000005" "$work/fin2" || fail "the replacement did not get the next number: $(cat "$work/fin2")"
[ "$(q "SELECT subtotal FROM invoices WHERE customer_id = 'cust_volc_a' AND period = '2025-11' AND status = 'finalized'")" = "$cut_subtotal" ] ||
  fail "the replacement is not priced at the cut price"
echo "invoice e2e ok"
