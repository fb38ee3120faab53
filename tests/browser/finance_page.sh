#!/usr/bin/env bash
# The finance page of `tally serve` (/finance) in a real browser: Debian's
# chromium driven by playwright-core (installed from
# tests/browser/package-lock.json into tests/browser/node_modules on first
# use) through finance_page.mjs, against `tally serve` on the example data:
# plans, cost card, customers and the events of 2025-11 consumed, plus a few
# events that must become dead letters of other reasons, and no invoice run
# yet (the page runs it). Customer B's name is `<img src=x onerror=alert(1)>`:
# it must show as text. Screenshots go to OUT (default: ./browser-finance-page),
# named on the last line.
# Usage: finance_page.sh TALLY SOURCE_DIR PG_STATE [OUT]
set -euo pipefail
tally=$1 src=$2 state=$3 out=${4:-}
read -r _ server < "$state"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$work/serve.log" ] && tail -n 20 "$work/serve.log"
  exit 1
}
# shellcheck source=../e2e/lib.sh
. "$src/tests/e2e/lib.sh"

chromium=${TALLY_CHROMIUM:-/usr/lib/chromium/chromium}
[ -x "$chromium" ] || fail "no chromium at $chromium (deploy/install-deps.sh installs Debian's chromium)"
command -v node >/dev/null || fail "no node (deploy/install-deps.sh installs Debian's nodejs and npm)"
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel error >"$work/npm.log" 2>&1 || fail "npm ci: $(tail -n 5 "$work/npm.log")"
fi

# The example ledger as e2e_example_ledger makes it (tests/e2e/lib.sh), with
# the cost card and without the invoice run: the page runs and finalizes.
sed 's/^    name: "Lingxi Robotics 灵犀机器人"$/    name: "<img src=x onerror=alert(1)>"/' \
  "$src/deploy/subscriptions.yaml" >"$work/subscriptions.yaml"
grep -q 'onerror=alert' "$work/subscriptions.yaml" || fail "could not rename customer B"
psql=/usr/lib/postgresql/15/bin/psql
q() { "$psql" "$TALLY_DATABASE_URL" -qAt -c "$1"; }
"$tally" dev-kafka --brokers 1 --topic usage:3 --bootstrap-file "$work/boot" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/boot" ] && break; sleep 0.1; done
[ -s "$work/boot" ] || fail "dev-kafka did not start"
"$psql" "$server" -qc "DROP DATABASE IF EXISTS e2e_browser_finance WITH (FORCE)" \
  -c "CREATE DATABASE e2e_browser_finance" >/dev/null
export TALLY_DATABASE_URL=${server%/*}/e2e_browser_finance
"$tally" migrate >/dev/null
"$tally" plan publish "$src"/deploy/plans/*.yaml >/dev/null
"$tally" cost publish "$src"/deploy/costs/*.yaml >/dev/null
"$tally" customer import "$work/subscriptions.yaml" >/dev/null
"$tally" issuer set demo --name "示例云计算有限公司" --tax-id 91110000 --default >/dev/null
cat "$src"/deploy/events/*.jsonl >"$work/events.jsonl"
# Dead letters of two more reasons than the examples' invalid ones: a
# customer nobody knows, and a model the plan has no price for.
cat >>"$work/events.jsonl" <<'EOF'
{"specversion":"1.0","id":"req-fin-0001","source":"gw-test","type":"llm.call","time":"2025-11-20T10:00:00Z","subject":"cust_nobody","data":{"model":"doubao-seed-1.6","input_tokens":100,"output_tokens":10}}
{"specversion":"1.0","id":"req-fin-0002","source":"gw-test","type":"llm.call","time":"2025-11-20T11:00:00Z","subject":"cust_nobody","data":{"model":"doubao-seed-1.6","input_tokens":200,"output_tokens":20}}
{"specversion":"1.0","id":"req-fin-0003","source":"gw-test","type":"llm.call","time":"2025-11-20T12:00:00Z","subject":"cust_volc_a","data":{"model":"no-such-model","input_tokens":300,"output_tokens":30}}
EOF
"$tally" produce --bootstrap-file "$work/boot" --file "$work/events.jsonl" >/dev/null
"$tally" consume --bootstrap-file "$work/boot" --exit-when-idle 2 --log-level error >"$work/consume.log" 2>&1 || true
[ "$(q "SELECT count(*) FROM invoices")" = 0 ] || fail "invoices before the page ran any"
[ "$(q "SELECT count(DISTINCT reason_code) FROM dead_letters")" -ge 3 ] ||
  fail "dead letters of fewer than 3 reasons: $(q "SELECT reason_code, count(*) FROM dead_letters GROUP BY 1")"

key() { "$tally" key create --role "$@" | grep -E '^tly_' || fail "tally key create --role $*"; }
key_finance=$(key finance)
key_customer=$(key customer --customer cust_volc_a)
key_sales=$(key sales)

port=$(e2e_free_port)
"$tally" serve --listen "127.0.0.1:$port" --threads 2 --web-dir "$src/web" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || fail "tally serve did not start: $(cat "$work/serve.out")"

# /finance through the real server: the page, its type and headers, no key.
base=http://127.0.0.1:$port
status() { curl -sS --path-as-is -o "$work/body" -D "$work/headers" -w '%{http_code}' "$base$1"; }
[ "$(status /finance)" = 200 ] || fail "GET /finance"
cmp -s "$work/body" "$src/web/finance.html" || fail "/finance is not web/finance.html"
grep -qi '^Content-Type: text/html; charset=utf-8' "$work/headers" || fail "/finance's Content-Type"
grep -qi "^Content-Security-Policy: default-src 'self'; script-src 'self'" "$work/headers" || fail "no CSP on /finance"
for path in /finance.html /Finance /static/finance; do
  got=$(status "$path")
  [ "$got" = 404 ] || fail "GET $path: $got, want 404"
done
for path in /finance/ /finance/../index.html /static/finance.html/; do
  got=$(status "$path")
  [ "$got" = 404 ] || [ "$got" = 400 ] || fail "GET $path: $got, want 404 or 400"
done
for file in finance.js finance.css; do
  [ "$(status "/static/$file")" = 200 ] || fail "/static/$file not served"
  cmp -s "$work/body" "$src/web/$file" || fail "/static/$file's bytes differ"
done

if [ -z "$out" ]; then
  out=$PWD/browser-finance-page
fi
mkdir -p "$out"
rm -f "$out"/*.png
void_reason='Billed twice: see ticket <b>42</b> & "the" refund'
TALLY_BASE=$base TALLY_KEY_FINANCE=$key_finance TALLY_KEY_CUSTOMER=$key_customer TALLY_KEY_SALES=$key_sales \
  TALLY_PERIOD=2025-11 TALLY_VOID_REASON=$void_reason TALLY_CHROMIUM=$chromium TALLY_OUT=$out \
  node "$here/finance_page.mjs" || fail "finance_page.mjs"
grep -q "$key_finance\|$key_customer\|$key_sales" "$work/serve.log" && fail "a key in the server's log"
# What the page did is what the ledger holds.
[ "$(q "SELECT count(*) FROM invoices WHERE status = 'void'")" = 1 ] ||
  fail "want one void invoice: $(q "SELECT number, status FROM invoices")"
[ "$(q "SELECT void_reason FROM invoices WHERE status = 'void'")" = "$void_reason" ] ||
  fail "the void reason as stored: $(q "SELECT void_reason FROM invoices WHERE status = 'void'")"
[ "$(q "SELECT count(*) FROM invoices WHERE status = 'draft'")" = 0 ] || fail "drafts left after finalizing"
echo "PASS: screenshots in $out"
