#!/usr/bin/env bash
# A throwaway local PostgreSQL 15 cluster for development and tests.
#   deploy/pg-local.sh start DIR [PORT]   initdb if needed, start; prints the URL
#   deploy/pg-local.sh stop DIR           fast shutdown
#   deploy/pg-local.sh url DIR [PORT]     the connection URL
# The server listens on 127.0.0.1:PORT (default 55432) and on a socket in
# DIR, trusts local connections, and keeps its data in DIR/data. As root the
# server runs as the postgres user (initdb refuses to run as root).
set -euo pipefail
cmd=${1:?usage: pg-local.sh start|stop|url DIR [PORT]}
dir=${2:?usage: pg-local.sh start|stop|url DIR [PORT]}
port=${3:-55432}
bin=/usr/lib/postgresql/15/bin
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
url="postgresql://tally@127.0.0.1:$port/tally"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Throwaway settings: no fsync (a crash of this machine loses the cluster),
# room for the dedup index in memory, checkpoints far apart.
PG_LOCAL_OPTS=${PG_LOCAL_OPTS:--c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min}

case "$cmd" in
  start)
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U tally --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off $PG_LOCAL_OPTS" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    fi
    if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U tally -d postgres -tAc \
         "SELECT 1 FROM pg_database WHERE datname = 'tally'" | grep -q 1; then
      "$bin/createdb" -h 127.0.0.1 -p "$port" -U tally tally
    fi
    echo "$url"
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  url)
    echo "$url"
    ;;
  *)
    echo "usage: pg-local.sh start|stop|url DIR [PORT]" >&2
    exit 2
    ;;
esac
