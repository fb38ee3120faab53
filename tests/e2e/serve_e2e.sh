#!/usr/bin/env bash
# `tally serve` end to end on the bundled example data, with the real pieces
# (dev Kafka, the pg fixture's PostgreSQL, `tally` processes, curl):
# consume -> invoice run -> finalize -> serve, then: health and readiness;
# 401 without or with a bad key; customer A walks every customer route with
# customer B's invoice ids, numbers and customer id and gets the 404 of a
# missing id, byte for byte, with nothing of B in it; roles (403); the usage
# total equals the finalized invoice's subtotal to the fen for every
# customer and grouping; PDF and CSV; bad input (400 with the reason); a
# 2 MB body (413); connections beyond the bound, in all and per address
# (503); HEAD and 405 with Allow; the rate limit (429); /metrics parses; no
# secret in the log; reads after PostgreSQL dropped the connections; keys
# that are not valid limited per address; SIGTERM stops it cleanly.
# Usage: serve_e2e.sh TALLY SOURCE_DIR PG_STATE
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

e2e_example_ledger "$server" e2e_serve "$work"
[ "$(q "SELECT count(*) FROM invoices WHERE status = 'finalized'")" = 4 ] || fail "expected 4 finalized invoices"

key() {  # role [customer]: prints the new key's secret
  local args=(--role "$1")
  [ $# -gt 1 ] && args+=(--customer "$2")
  "$tally" key create "${args[@]}" | grep -E '^tly_' || fail "tally key create $*"
}
key_a=$(key customer cust_volc_a)
key_b=$(key customer cust_volc_b)
key_f=$(key finance)
key_s=$(key sales)
key_r=$(key customer cust_volc_a)  # for the rate limit only

port=$(e2e_free_port)
port2=$(e2e_free_port)
base=http://127.0.0.1:$port
"$tally" serve --listen "127.0.0.1:$port" --threads 2 --max-connections 8 --rate-limit 50 --rate-burst 100 \
  >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/healthz" >/dev/null || fail "tally serve did not start: $(cat "$work/serve.out")"
grep -q "listening on http://127.0.0.1:$port" "$work/serve.out" || fail "no address printed"

# get KEY PATH [curl args...]: the body in $work/body, the headers in
# $work/headers; prints the status.
get() {
  local k=$1 path=$2
  shift 2
  local auth=()
  [ -n "$k" ] && auth=(-H "Authorization: Bearer $k")
  curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' "${auth[@]}" "$@" "$base$path"
}
expect() {  # status key path [curl args...]
  local want=$1
  shift
  local got
  got=$(get "$@")
  [ "$got" = "$want" ] || fail "GET $2: status $got, want $want: $(head -c 300 "$work/body")"
}
header() { grep -i "^$1:" "$work/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
json() { python3 -c "import json,sys; d=json.load(open('$work/body')); print($1)"; }

expect 200 "" /healthz
expect 200 "" /readyz
[ "$(json 'd["status"]')" = ready ] || fail "readyz body"

# Authentication: every /v1 route and /metrics.
for path in /v1/usage /v1/invoices /v1/invoices/1 /v1/invoices/1.pdf /v1/invoices/1.csv /metrics; do
  expect 401 "" "$path"
  [ "$(header WWW-Authenticate)" = 'Bearer realm="tally"' ] || fail "$path: WWW-Authenticate $(header WWW-Authenticate)"
  expect 401 "tly_nope_0000" "$path"
  [ "$(json 'd["error"]["code"]')" = unauthorized ] || fail "$path: 401 body"
done
# Security headers on every answer; no CORS.
expect 200 "$key_a" /v1/invoices -H "Origin: https://evil.example"
grep -qi "^Content-Security-Policy: default-src 'self'; script-src 'self'" "$work/headers" || fail "no CSP"
grep -qi "^X-Content-Type-Options: nosniff" "$work/headers" || fail "no nosniff"
grep -qi "^Cache-Control: no-store" "$work/headers" || fail "no no-store on /v1"
grep -qi "^Access-Control-" "$work/headers" && fail "CORS headers"

# Isolation: customer A sees its own finalized invoice and nothing of B.
a_id=$(q "SELECT invoice_id FROM invoices WHERE customer_id = 'cust_volc_a'")
a_number=$(q "SELECT number FROM invoices WHERE customer_id = 'cust_volc_a'")
b_id=$(q "SELECT invoice_id FROM invoices WHERE customer_id = 'cust_volc_b'")
b_number=$(q "SELECT number FROM invoices WHERE customer_id = 'cust_volc_b'")
expect 200 "$key_a" /v1/invoices
[ "$(json '",".join(i["number"] for i in d["invoices"])')" = "$a_number" ] || fail "A's list: $(cat "$work/body")"
expect 404 "$key_a" /v1/invoices/999999
missing=$(cat "$work/body")
[ "$missing" = '{"error":{"code":"not_found","message":"no such resource"}}' ] || fail "404 body $missing"
for path in "/v1/invoices/$b_id" "/v1/invoices/$b_number" "/v1/invoices/$b_id.pdf" "/v1/invoices/$b_number.pdf" \
  "/v1/invoices/$b_id.csv" "/v1/invoices/$b_number.csv" "/v1/invoices?customer=cust_volc_b" \
  "/v1/invoices?customer=cust_volc_b&period=2025-11" "/v1/usage?customer=cust_volc_b" \
  "/v1/usage?customer=cust_volc_b&period=2025-11&group_by=model"; do
  expect 404 "$key_a" "$path"
  [ "$(cat "$work/body")" = "$missing" ] || fail "$path: body differs from a missing id's: $(cat "$work/body")"
  grep -qi "cust_volc_b\|$b_number" "$work/headers" "$work/body" && fail "$path: leaks B"
done
expect 200 "$key_a" "/v1/invoices/$a_number"
[ "$(json 'd["number"]')" = "$a_number" ] || fail "A's invoice"
expect 200 "$key_a" "/v1/invoices/$a_id.pdf"
[ "$(head -c 4 "$work/body")" = "%PDF" ] || fail "the PDF does not start with %PDF"
[ "$(header Content-Type)" = application/pdf ] || fail "PDF content type $(header Content-Type)"
expect 200 "$key_a" "/v1/invoices/$a_number.csv"
grep -q "$a_number" "$work/body" || fail "the CSV does not name the invoice"
expect 200 "$key_b" "/v1/invoices/$b_number"  # B sees its own

# Roles.
expect 403 "$key_a" /metrics
expect 403 "$key_s" /v1/usage?customer=cust_volc_a
expect 403 "$key_s" /v1/invoices
[ "$(json 'd["error"]["code"]')" = forbidden ] || fail "403 body"
expect 400 "$key_f" /v1/usage
grep -q "customer is required" "$work/body" || fail "finance without customer: $(cat "$work/body")"

# Usage agrees with the invoice to the fen, in every grouping.
for c in cust_volc_a cust_volc_b cust_q cust_g; do
  subtotal=$(q "SELECT subtotal FROM invoices WHERE customer_id = '$c'")
  for g in day model project; do
    expect 200 "$key_f" "/v1/usage?customer=$c&period=2025-11&group_by=$g"
    total=$(json '";".join(t["cost"] for t in d["totals"])')
    [ "$total" = "$subtotal" ] || fail "$c by $g: usage total $total, invoice subtotal $subtotal"
    rows=$(json 'len(d["rows"])')
    [ "$rows" -gt 0 ] || fail "$c by $g: no rows"
  done
done
# By project: `tally usage --group-by project` gives the API's rows, number
# for number, and the example's projects are named (search-bot is A's).
for c in cust_volc_a cust_volc_b cust_q cust_g; do
  expect 200 "$key_f" "/v1/usage?customer=$c&period=2025-11&group_by=project"
  api_rows=$(json '"|".join(r["period"]+"/"+r["group"]+"/"+r["kind"]+"/"+str(r["calls"])+"/"+r["cost"]+"/"+r["currency"] for r in d["rows"])')
  "$tally" usage --group-by project --period 2025-11 --customer "$c" --format json >"$work/cli.json" ||
    fail "tally usage --group-by project for $c"
  cli_rows=$(python3 -c "import json; d=json.load(open('$work/cli.json')); print('|'.join(r['period']+'/'+r['group']+'/'+r['kind']+'/'+str(r['calls'])+'/'+r['cost']+'/'+r['currency'] for r in d['rows']))")
  [ -n "$api_rows" ] || fail "$c by project: no rows"
  [ "$api_rows" = "$cli_rows" ] || fail "$c by project: API $api_rows, tally usage $cli_rows"
done
expect 200 "$key_a" "/v1/usage?period=2025-11&group_by=project"
json '"\n".join(r["group"] for r in d["rows"])' | grep -qx search-bot || fail "A's projects: $(cat "$work/body")"
"$tally" usage --group-by project --period 2025-11 --customer cust_volc_a | grep -q search-bot ||
  fail "tally usage --group-by project names no project"
expect 200 "$key_a" "/v1/usage?period=2025-11&group_by=model"
[ "$(json 'd["totals"][0]["cost"]')" = "$(q "SELECT subtotal FROM invoices WHERE customer_id = 'cust_volc_a'")" ] ||
  fail "A's own usage total"
expect 200 "$key_a" "/v1/usage?from=2025-11-01&to=2025-11-08&group_by=hour"

# Bad input: 400 with the reason.
expect 400 "$key_a" "/v1/usage?period=2025-13"
[ "$(json 'd["error"]["message"]')" = "period must be a month like 2025-11, not '2025-13'" ] || fail "$(cat "$work/body")"
expect 400 "$key_a" "/v1/usage?from=yesterday&to=2025-11-02"
grep -q "from must be a date" "$work/body" || fail "$(cat "$work/body")"
expect 400 "$key_a" "/v1/usage?from=2025-11-05&to=2025-11-01"
expect 400 "$key_a" "/v1/usage?colour=red"
grep -q "unknown query parameter 'colour'" "$work/body" || fail "$(cat "$work/body")"
expect 400 "$key_a" "/v1/usage?period=2025-11&period=2025-10"
expect 400 "$key_a" "/v1/usage?customer=%00"
expect 400 "$key_a" "/v1/usage?customer=%C3%28"
expect 405 "$key_a" /v1/usage -X DELETE
expect 404 "$key_a" /v1/nothing
head -c 2000000 /dev/zero >"$work/2mb"
expect 413 "$key_a" /v1/usage -X POST --data-binary "@$work/2mb"
expect 431 "$key_a" /v1/usage -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' x)"

# Connections beyond the bound: 503, and service again once they close.
python3 - "$port" <<'PY' || fail "connection bound"
import socket, sys, time
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
answer = s.recv(4096).decode()
assert answer.startswith("HTTP/1.1 503"), answer
assert "Retry-After: 1" in answer, answer
for c in idle:
    c.close()
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
assert s.recv(4096).decode().startswith("HTTP/1.1 200")
PY

# Connections of one address beyond its bound (here 3 of 8): 503 for it,
# while another address still gets in.
"$tally" serve --listen "127.0.0.1:$port2" --threads 1 --max-connections 8 --max-connections-per-address 3 \
  >"$work/serve2.out" 2>"$work/serve2.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port2/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$port2" <<'PY' || fail "connection bound per address"
import socket, sys, time
port = int(sys.argv[1])
def ask(source):
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return s.recv(4096).decode()
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.3)
answer = ask("127.0.0.1")
assert answer.startswith("HTTP/1.1 503") and "from this address" in answer, answer
assert ask("127.0.0.2").startswith("HTTP/1.1 200")
for c in idle:
    c.close()
time.sleep(0.3)
assert ask("127.0.0.1").startswith("HTTP/1.1 200")
PY

# Framing: a response to HEAD sends no body (the next response follows its
# headers at once); a Transfer-Encoding other than chunked, and an HTTP/1.1
# request without Host, are 400 and the connection closes (no second
# request hidden in a body runs).
python3 - "$port" <<'PY' || fail "framing"
import socket, sys
port = int(sys.argv[1])
def exchange(raw):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(raw)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        if data.count(b"HTTP/1.1 ") >= 2 and data.endswith(b"}"):
            break
    return data.decode()
both = exchange(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
first, rest = both.split("\r\n\r\n", 1)
assert first.startswith("HTTP/1.1 200"), both
assert "Content-Length: 15" in first, both  # the length of the GET's body, which HEAD does not send
assert rest.startswith("HTTP/1.1 200"), both
post = exchange(b"POST /v1/usage HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
assert post.startswith("HTTP/1.1 405") and "Allow: GET, HEAD\r\n" in post, post
smuggled = exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
assert smuggled.startswith("HTTP/1.1 400"), smuggled
assert smuggled.count("HTTP/1.1 ") == 1, smuggled
two_keys = exchange(b"GET /v1/invoices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n")
assert two_keys.startswith("HTTP/1.1 400") and "more than one Authorization" in two_keys, two_keys
hostless = exchange(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
assert hostless.startswith("HTTP/1.1 400") and "Host" in hostless, hostless
PY

# Keep-alive: many requests on one connection.
curl -fsS -o /dev/null -o /dev/null -o /dev/null "$base/healthz" "$base/healthz" "$base/readyz" 2>"$work/curl.err" ||
  fail "keep-alive"

# The rate limit: 50/s, bursts of 100, per key: 300 requests at once on one
# connection (well under 4 s) meet 429s with Retry-After.
codes=$(for _ in $(seq 300); do echo "url = \"$base/v1/invoices?period=2025-10\""; echo "output = \"/dev/null\""; done |
  curl -s -K - -D "$work/rl_headers" -w '%{http_code}\n' -H "Authorization: Bearer $key_r" | sort | uniq -c)
echo "$codes" | grep -q " 429$" || fail "no 429 in 300 quick requests: $codes"
grep -qi "^Retry-After: [0-9]" "$work/rl_headers" || fail "429 without Retry-After"
expect 200 "$key_a" /v1/invoices  # another key is not limited

# /metrics (finance) parses as Prometheus text.
expect 200 "$key_f" /metrics
python3 - "$work/body" <<'PY' || fail "metrics do not parse: $(head -c 500 "$work/body")"
import re, sys
line = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.e+]+$')
names = set()
for l in open(sys.argv[1]):
    l = l.rstrip("\n")
    if not l or l.startswith("# HELP ") or l.startswith("# TYPE "):
        continue
    assert line.match(l), l
    names.add(l.split("{")[0].split(" ")[0])
for n in ["tally_http_requests_total", "tally_http_request_duration_seconds_bucket", "tally_http_requests_in_flight",
          "tally_usage_cache_answers_total", "tally_usage_cache_entries"]:
    assert n in names, n
PY
grep -q 'tally_http_requests_total{route="/v1/invoices/{id}",status="404"}' "$work/body" || fail "no 404 count"

# No secret and no query string in the log.
for k in "$key_a" "$key_b" "$key_f" "$key_s" "$key_r"; do
  grep -qF "$k" "$work/serve.log" && fail "a secret is in the log"
done
grep -q "customer=cust_volc_b" "$work/serve.log" && fail "a query string is in the log"
grep -q "http req=.* GET /v1/invoices 200 .*ms key=" "$work/serve.log" || fail "no access log line"

# PostgreSQL drops the server's connections (a restart, a failover): the
# next reads answer 200 on new connections, not a 500 each.
q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
   WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
for i in 1 2 3 4; do expect 200 "$key_a" "/v1/usage?period=2025-11"; done

# Keys that are not valid, many from one address: after a burst (20) they
# are 429s without a lookup; another address is not held up.
codes=$(for _ in $(seq 40); do echo "url = \"$base/v1/invoices\""; echo "output = \"/dev/null\""; done |
  curl -s -K - -w '%{http_code}\n' -H "Authorization: Bearer tly_000000000000_guess" | sort | uniq -c)
echo "$codes" | grep -q " 401$" || fail "no 401 for bad keys: $codes"
echo "$codes" | grep -q " 429$" || fail "bad keys from one address are not limited: $codes"
[ "$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -H "Authorization: Bearer $key_b" \
  "$base/v1/invoices")" = 200 ] || fail "another address is held up by the bad keys of 127.0.0.1"

# SIGTERM: a clean stop.
kill -TERM "$serve_pid"
for _ in $(seq 100); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$serve_pid" 2>/dev/null && fail "tally serve did not stop on SIGTERM"
wait "$serve_pid" || fail "tally serve exited $? on SIGTERM"
echo "serve e2e ok"
