#!/usr/bin/env bash
# A throwaway PostgreSQL for tests: a cluster in a temporary folder on a free loopback port,
# no service, gone afterwards. Debian's `postgresql` package (installed by scripts/setup.sh).
#
#   scripts/pg.sh run CMD…        run CMD with DATABASE_URL set; starts (and afterwards stops) a
#                                 throwaway cluster unless DATABASE_URL is already set
#   scripts/pg.sh serve-while PID start one, print its URL, stop it when process PID ends
#                                 (what the tests do when run without DATABASE_URL)
#
# Tests run the cluster without durability (fsync, synchronous_commit and full_page_writes off:
# nothing in a throwaway cluster must survive a power cut). Benchmarks set PG_DURABLE=1 to run
# it as a production server does, with all three on, so their figures include the WAL flush.
set -euo pipefail

PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start DIR → prints the URL
start() {
  local dir="$1" port durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_DURABLE:-0}" = 1 ] && durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  for _ in 1 2 3 4 5; do
    port="$(free_port)"
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durability \
            -c max_connections=700 -c shared_buffers=128MB" >/dev/null; then
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
  done
  echo "pg.sh: PostgreSQL did not start; see $dir/log" >&2
  return 1
}

stop() {
  local dir="$1"
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  run)
    shift
    if [ -n "${DATABASE_URL:-}" ]; then exec "$@"; fi
    dir="$(mktemp -d /tmp/ecrf-pg.XXXXXX)"
    trap 'stop "$dir"' EXIT
    DATABASE_URL="$(start "$dir")"
    export DATABASE_URL
    echo "pg.sh: throwaway PostgreSQL at $DATABASE_URL ($( [ "${PG_DURABLE:-0}" = 1 ] && echo durable || echo not durable))" >&2
    "$@"
    ;;
  serve-while)
    pid="$2"
    dir="$(mktemp -d /tmp/ecrf-pg.XXXXXX)"
    url="$(start "$dir")"
    # The watcher outlives this script and stops the cluster when the test process ends.
    ( while kill -0 "$pid" 2>/dev/null; do sleep 1; done; stop "$dir" ) >/dev/null 2>&1 </dev/null &
    disown
    echo "$url"
    ;;
  *)
    echo "usage: scripts/pg.sh run CMD… | serve-while PID" >&2
    exit 2
    ;;
esac
