#!/usr/bin/env bash
# The customer page of `tally serve` in a real browser: Debian's chromium
# driven by playwright-core (installed from tests/browser/package-lock.json
# into tests/browser/node_modules on first use) through customer_page.mjs,
# against `tally serve` on the example ledger (tests/e2e/lib.sh). Customer
# B's name is `<img src=x onerror=alert(1)>`: it must show as text.
# Screenshots go to OUT (default: a directory kept under the build tree's
# Testing/, named on the last line).
# Usage: customer_page.sh TALLY SOURCE_DIR PG_STATE [OUT]
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

sed 's/^    name: "Lingxi Robotics 灵犀机器人"$/    name: "<img src=x onerror=alert(1)>"/' \
  "$src/deploy/subscriptions.yaml" >"$work/subscriptions.yaml"
grep -q 'onerror=alert' "$work/subscriptions.yaml" || fail "could not rename customer B"
e2e_example_ledger "$server" e2e_browser "$work" "$work/subscriptions.yaml"
psql=/usr/lib/postgresql/15/bin/psql
q() { "$psql" "$TALLY_DATABASE_URL" -qAt -c "$1"; }
[ "$(q "SELECT count(*) FROM invoices WHERE status = 'finalized'")" -ge 2 ] || fail "no finalized invoices"

key() { "$tally" key create --role customer --customer "$1" | grep -E '^tly_' || fail "tally key create $1"; }
key_a=$(key cust_volc_a)
key_b=$(key cust_volc_b)

port=$(e2e_free_port)
"$tally" serve --listen "127.0.0.1:$port" --threads 2 --web-dir "$src/web" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || fail "tally serve did not start: $(cat "$work/serve.out")"
grep -q "pages from $src/web" "$work/serve.out" || fail "no pages: $(cat "$work/serve.out")"

# The static files through the real server: types, headers, no key, and
# traversal in every spelling a 404 (curl --path-as-is sends it as written).
base=http://127.0.0.1:$port
status() { curl -sS --path-as-is -o "$work/body" -D "$work/headers" -w '%{http_code}' "$base$1"; }
[ "$(status /static/vendor/uPlot.iife.min.js)" = 200 ] || fail "uPlot not served"
grep -qi '^Content-Type: text/javascript; charset=utf-8' "$work/headers" || fail "uPlot's Content-Type"
grep -qi "^Content-Security-Policy: default-src 'self'; script-src 'self'" "$work/headers" || fail "no CSP on /static"
grep -qi '^X-Content-Type-Options: nosniff' "$work/headers" || fail "no nosniff on /static"
cmp -s "$work/body" "$src/web/vendor/uPlot.iife.min.js" || fail "uPlot's bytes differ"
for path in /static/../CMakeLists.txt /static/%2e%2e/CMakeLists.txt /static/..%2fCMakeLists.txt /static/vendor/../app.js \
  '/static/..\CMakeLists.txt' /static/app.js%00 /static/ /static/vendor /static/vendor/ /static//app.js /web/app.js \
  /static/tests/browser/customer_page.sh /index.html /static/nope.js; do
  got=$(status "$path")
  [ "$got" = 404 ] || fail "GET $path: $got, want 404"
done
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/static/app.js")" = 405 ] || fail "POST /static/app.js"

if [ -z "$out" ]; then
  out=$PWD/browser-customer-page
fi
mkdir -p "$out"
rm -f "$out"/*.png
TALLY_BASE=http://127.0.0.1:$port TALLY_KEY_A=$key_a TALLY_KEY_B=$key_b TALLY_PERIOD=2025-11 \
  TALLY_B_INVOICE=$(q "SELECT invoice_id FROM invoices WHERE customer_id = 'cust_volc_b' AND status = 'finalized'") \
  TALLY_B_NUMBER=$(q "SELECT number FROM invoices WHERE customer_id = 'cust_volc_b' AND status = 'finalized'") \
  TALLY_CHROMIUM=$chromium TALLY_OUT=$out \
  node "$here/customer_page.mjs" || fail "customer_page.mjs"
grep -q "$key_a\|$key_b" "$work/serve.log" && fail "a key in the server's log"
echo "PASS: screenshots in $out"
