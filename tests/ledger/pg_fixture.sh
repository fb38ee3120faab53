#!/usr/bin/env bash
# ctest fixture: a throwaway PostgreSQL for the ledger tests.
#   pg_fixture.sh start STATE   start a cluster in a new /tmp dir on a free port;
#                               STATE gets "DIR URL"
#   pg_fixture.sh stop STATE    stop it and remove its dir
set -euo pipefail
cmd=${1:?} state=${2:?}
here=$(cd "$(dirname "$0")/../.." && pwd)
case "$cmd" in
  start)
    dir=$(mktemp -d /tmp/tally-test-pg.XXXXXX)
    chmod 755 "$dir"   # the server runs as postgres when we are root
    for attempt in 1 2 3 4 5; do
      port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
      if url=$(bash "$here/deploy/pg-local.sh" start "$dir" "$port" 2>"$dir/start.err"); then
        echo "$dir $url" > "$state"
        echo "PostgreSQL for tests: $url (data in $dir)"
        exit 0
      fi
      bash "$here/deploy/pg-local.sh" stop "$dir" || true
      rm -rf "$dir/data"
    done
    cat "$dir/start.err" >&2
    exit 1
    ;;
  stop)
    [ -f "$state" ] || exit 0
    read -r dir url < "$state"
    bash "$here/deploy/pg-local.sh" stop "$dir" || true
    rm -rf "$dir" "$state"
    ;;
esac
