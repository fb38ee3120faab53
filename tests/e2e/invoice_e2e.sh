#!/usr/bin/env bash
# The finance workflow end to end, with the real pieces (dev Kafka, the pg
# fixture's PostgreSQL, `tally` processes) on the bundled example data:
#   consume -> invoice run (drafts equal `tally rate`'s invoices) -> finalize
#   (gapless numbers) -> verify -> the database refuses edits -> PDF and CSV
#   export -> a late event (adjustment on the next period = what `tally rate`
#   says the period costs now minus what was invoiced) -> a retroactive price
#   cut and `tally rerate` (a negative adjustment of exactly the cut) ->
#   void with a credit note and a replacement invoice -> bad arguments are
#   usage errors before PostgreSQL -> credit notes exported as PDF, CSV, JSON.
# Usage: invoice_e2e.sh TALLY SOURCE_DIR PG_STATE
set -euo pipefail
tally=$1 src=$2 state=$3
read -r _ server < "$state"
psql=/usr/lib/postgresql/15/bin/psql
# shellcheck source=lib.sh
. "$src/tests/e2e/lib.sh"
e2e_begin
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
# Bad arguments are usage errors (exit 2) with our message, before anything
# reaches PostgreSQL: a malformed credit amount, text that is not UTF-8.
# (other: the largest finalized November invoice of another customer.)
other=$(q "SELECT number FROM invoices WHERE customer_id <> 'cust_volc_a' AND period = '2025-11' AND status = 'finalized' ORDER BY subtotal DESC LIMIT 1")
[ -n "$other" ] || fail "no other finalized November invoice"
part=$(q "SELECT trunc(subtotal / 2, 2) FROM invoices WHERE number = '$other'")
other_currency=$(q "SELECT currency FROM invoices WHERE number = '$other'")
python3 -c "import sys; from decimal import Decimal as D; sys.exit(0 if D(sys.argv[1]) > 0 else 1)" "$part" ||
  fail "$other is too small to credit part of it"
notes_before=$(q "SELECT count(*) FROM credit_notes")
usage_error() {  # expected-message command...: exits 2, says expected-message, never PostgreSQL's words
  local want=$1 rc=0
  shift
  "$tally" "$@" >"$work/bad.out" 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "exit $rc, not 2 (usage error), for: $* ($(cat "$work/bad.out"))"
  grep -qF -- "$want" "$work/bad.out" || fail "no '$want' for: $* ($(cat "$work/bad.out"))"
  if grep -qiE "invalid byte sequence|ERROR: |pqxx" "$work/bad.out"; then fail "PostgreSQL's message shows: $(cat "$work/bad.out")"; fi
}
for bad in abc 1,00 -5.00 0 0.00 "" 1e3 10. 5.0.0; do
  usage_error "--amount" invoice credit "$other" --amount "$bad" --reason "wrong price"
done
usage_error "has more decimal places than $other_currency allows" invoice credit "$other" --amount 1.001 --reason "wrong price"
usage_error "is not valid UTF-8 (byte 0xff at offset 4)" invoice credit "$other" --amount 1.00 --reason $'bad \xff reason'
usage_error "is not valid UTF-8" invoice void "$other" --reason $'\xc3'
usage_error "customer id '\xfe' is not valid UTF-8" invoice list --customer $'\xfe'
usage_error "customer id" invoice run --period 2025-11 --customer $'cust_\xe5\xae'
usage_error "is not valid UTF-8" invoice export $'INV-\xff' --format json
usage_error "is not valid UTF-8" issuer set demo2 --name $'\xe7\xa4\xba\xff'
usage_error "is not valid UTF-8" issuer set demo --name "示例云计算有限公司" --address $'\x80'
[ "$(q "SELECT count(*) FROM credit_notes")" = "$notes_before" ] || fail "a refused credit wrote a credit note"
[ "$(q "SELECT count(*) FROM issuers")" = 1 ] || fail "a refused issuer was written"

# Credit notes export like invoices: a partial credit of half of other's
# invoice beside the void of cust_volc_a's, each as PDF, CSV and JSON.
"$tally" invoice credit "$other" --amount "$part" --reason "价格调整, 5 元" >"$work/credit" || fail "credit: $(cat "$work/credit")"
cn_void=$(sed -n 's/^credit note \(CN-[0-9]*-[0-9]*\) .*/\1/p' "$work/void")
cn_part=$(sed -n 's/^credit note \(CN-[0-9]*-[0-9]*\) .*/\1/p' "$work/credit")
[ -n "$cn_void" ] && [ -n "$cn_part" ] || fail "credit note numbers: '$cn_void' '$cn_part'"
cn_field() { q "SELECT $2 FROM credit_notes WHERE number = '$1'"; }
[ "$(cn_field "$cn_part" subtotal)" = "$part" ] || fail "partial credit subtotal $(cn_field "$cn_part" subtotal)"
"$tally" invoice export "$cn_void" --format pdf --output "$work/$cn_void.pdf" >"$work/out" || fail "export: $(cat "$work/out")"
"$tally" invoice export "$cn_part" --format pdf --output "$work/$cn_part.pdf" >"$work/out" || fail "export: $(cat "$work/out")"
if [ -n "${TALLY_E2E_KEEP:-}" ]; then mkdir -p "$TALLY_E2E_KEEP" && cp "$work"/CN-*.pdf "$TALLY_E2E_KEEP"/; fi
if command -v pdftotext >/dev/null; then
  pdf_has() {  # file strings...
    local f=$1
    shift
    pdftotext -raw "$f" "$f.txt"
    for want in "$@"; do grep -qF -- "$want" "$f.txt" || fail "$(basename "$f") lacks '$want': $(cat "$f.txt")"; done
    if grep -q DRAFT "$f.txt"; then fail "$(basename "$f") says DRAFT"; fi
  }
  volc_a_name=$(q "SELECT customer_name FROM invoices WHERE number = '$volc_a'")
  other_name=$(q "SELECT customer_name FROM invoices WHERE number = '$other'")
  # The void credits every line of the invoice: its first line's amount shows.
  first_line=$(q "SELECT l.amount_rounded FROM invoice_lines l JOIN invoices i USING (invoice_id) WHERE i.number = '$volc_a' AND l.line_no = 1")
  pdf_has "$work/$cn_void.pdf" "Credit note" "$cn_void" "Credits invoice $volc_a" "$volc_a_name" "示例云计算有限公司" \
    "Subtotal credited" "$(cn_field "$cn_void" subtotal)" "$(cn_field "$cn_void" tax)" "$(cn_field "$cn_void" total) $(cn_field "$cn_void" currency)" \
    "$first_line" "Reason: billing address was wrong" "SHA-256 $(cn_field "$cn_void" sha256)"
  pdf_has "$work/$cn_part.pdf" "Credit note" "$cn_part" "Credits invoice $other" "$other_name" \
    "Partial credit of invoice $other" "$part" "$(cn_field "$cn_part" tax)" "$(cn_field "$cn_part" total) $other_currency" \
    "价格调整, 5 元"
fi
# CSV: a header and one row per credit note, as stored.
"$tally" invoice export "$cn_void" "$cn_part" --format csv --output "$work/cn.csv" >/dev/null || fail "CSV export"
python3 - "$work/cn.csv" "$cn_void" "$cn_part" "$volc_a" "$other" "$part" <<'PY' || fail "credit note CSV: $(cat "$work/cn.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
assert [r["credit_note_number"] for r in rows] == sys.argv[2:4], rows
assert [r["invoice_number"] for r in rows] == sys.argv[4:6], rows
assert [r["kind"] for r in rows] == ["void", "partial"], rows
assert rows[1]["subtotal"] == sys.argv[6] and rows[1]["reason"] == "价格调整, 5 元", rows
PY
while IFS=, read -r number subtotal tax total sha; do
  grep -qF "$number,void,demo,$volc_a" "$work/cn.csv" || grep -qF "$number,partial,demo,$other" "$work/cn.csv" ||
    fail "CSV row of $number"
  grep -F "$number," "$work/cn.csv" | grep -qF ",$subtotal,$tax,$total," || fail "CSV amounts of $number"
  grep -F "$number," "$work/cn.csv" | grep -qF ",$sha" || fail "CSV hash of $number"
done < <(q "SELECT number, subtotal, tax, total, sha256 FROM credit_notes ORDER BY number" | tr '|' ,)
# JSON: the period's credit notes (--credit-notes), each hashing to its stored SHA-256.
"$tally" invoice export --period 2025-11 --credit-notes --format json >"$work/cn.json" || fail "JSON export"
python3 - "$work/cn.json" "$cn_void" "$cn_part" <<'PY' || fail "credit note JSON: $(cat "$work/cn.json")"
import hashlib, json, sys
notes = json.load(open(sys.argv[1], encoding="utf-8"))
assert sorted(n["number"] for n in notes) == sorted(sys.argv[2:4]), notes
for n in notes:
    assert n["document"] == "credit_note", n
    canonical = {k: n[k] for k in ["document", "number", "issuer", "invoice_number", "customer", "customer_name",
                                   "currency", "kind", "reason", "subtotal", "tax", "total", "created_at"]}
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest() == n["sha256"], (text, n["sha256"])
PY
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/cn.json")" = 2 ] || fail "JSON count"
if "$tally" invoice export CN-1999-000042 --format json >"$work/out" 2>&1; then fail "exported a credit note that is not"; fi
grep -q "no invoice or credit note CN-1999-000042" "$work/out" || fail "unknown number: $(cat "$work/out")"
# Invoices and credit notes never share a CSV (different columns).
usage_error "export them separately" invoice export "$other" "$cn_part" --format csv
"$tally" invoice export "$other" "$cn_part" --format json >"$work/mixed.json" || fail "mixed JSON export"
[ "$(python3 -c 'import json,sys; print(",".join(d["document"] for d in json.load(open(sys.argv[1]))))' "$work/mixed.json")" = \
  "invoice,credit_note" ] || fail "mixed JSON: $(cat "$work/mixed.json")"
# Several credit notes as PDF go to a directory, one file per number.
"$tally" invoice export --period 2025-11 --credit-notes --format pdf --output "$work/cn-pdfs" >/dev/null || fail "PDF dir"
[ -s "$work/cn-pdfs/$cn_void.pdf" ] && [ -s "$work/cn-pdfs/$cn_part.pdf" ] || fail "PDFs: $(ls "$work/cn-pdfs")"
"$tally" invoice export "$other" --credit-notes --format pdf --output "$work/one-note" >/dev/null || fail "PDF of one note"
[ "$(ls "$work/one-note")" = "$cn_part.pdf" ] || fail "--credit-notes of $other wrote: $(ls "$work/one-note")"
"$tally" invoice verify >"$work/verify2" || fail "verify: $(cat "$work/verify2")"
grep -q "2 credit note(s) verified, 0 mismatch" "$work/verify2" || fail "verify: $(cat "$work/verify2")"
echo "invoice e2e ok"
