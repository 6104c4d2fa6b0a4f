#!/usr/bin/env bash
# with-test-services.sh CMD... — run CMD with PostgreSQL and Redis available.
#
# Unless DATABASE_URL / CELERY_BROKER_URL already point to running servers,
# start a throwaway PostgreSQL cluster (fsync off, a free port, run as the
# postgres user) and a Redis server, export their URLs, run CMD, and stop what
# was started, on failure and on Ctrl-C too.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workdir=$(mktemp -d /tmp/dermcurate-services.XXXXXX)
pg_bin=""
pg_data=""
redis_pid=""

stop_services() {
  local status=$?
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_pg_user "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap stop_services EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The server's initdb: the client package alone also makes a /usr/lib/postgresql/*/bin folder.
find_initdb() {
  { ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null || command -v initdb || true; } | sort -V | tail -n 1
}

if [ -z "${DATABASE_URL:-}" ]; then
  initdb_path=$(find_initdb)
  if [ -z "$initdb_path" ]; then
    "$here/apt-ensure.sh" initdb postgresql
    initdb_path=$(find_initdb)
  fi
  if [ -z "$initdb_path" ]; then
    echo "PostgreSQL's initdb is missing (looked in /usr/lib/postgresql/*/bin and on PATH)." >&2
    exit 1
  fi
  pg_bin=$(dirname "$(readlink -f "$initdb_path")")
  [ "$(id -u)" = 0 ] && chown postgres "$workdir"
  pg_data="$workdir/pg"
  pg_port=$(free_port)
  as_pg_user "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg_user "$pg_bin/pg_ctl" -D "$pg_data" -l "$workdir/pg.log" -w -t 60 start \
    -o "-p $pg_port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null
  # The database the URL names exists, so that tools run before the tests (makemigrations --check)
  # find it; pytest makes its own test database next to it.
  as_pg_user "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres dermcurate
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/dermcurate"
  echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on port $pg_port (throwaway)"
fi

if [ -z "${CELERY_BROKER_URL:-}" ]; then
  "$here/apt-ensure.sh" redis-server redis-server
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize no &
  redis_pid=$!
  for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/0"
  export REDIS_URL="$CELERY_BROKER_URL"
  echo "Redis $(redis-server --version | awk '{print $3}') on port $redis_port (throwaway)"
fi

"$@"
