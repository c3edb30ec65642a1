#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on localhost.
#
# Uses the ones already running (as on a developer machine with system services); otherwise
# starts local ones from the installed binaries with their data under .data/; on Debian as root
# installs the missing packages first. Idempotent: run it as often as you like.
set -euo pipefail

cd "$(dirname "$0")/.."
DATA_DIR="$PWD/.data"
PG_HOST=127.0.0.1
PG_PORT="${SERVICES_POSTGRES_PORT:-5432}"
REDIS_PORT="${SERVICES_REDIS_PORT:-6379}"
DATABASE_NAME="${SERVICES_DATABASE_NAME:-die_hard}"

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {
  local name=$1 host=$2 port=$3
  for _ in $(seq 1 60); do
    port_open "$host" "$port" && return 0
    sleep 0.5
  done
  log "$name did not come up on $host:$port"
  return 1
}

install_packages() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing $* with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    log "cannot install $* (need Debian and root): install them, or point DATABASE_URL/REDIS_URL at running servers"
    exit 1
  fi
}

postgres_bindir() {
  local pg_ctl
  pg_ctl=$(command -v pg_ctl 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$pg_ctl" ] && dirname "$pg_ctl"
}

as_postgres_owner() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local bindir
  bindir=$(postgres_bindir || true)
  if [ -z "$bindir" ]; then
    install_packages postgresql
    bindir=$(postgres_bindir)
  fi
  local pgdata="$DATA_DIR/postgres"
  mkdir -p "$pgdata"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$pgdata"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $pgdata"
    as_postgres_owner "$bindir/initdb" -D "$pgdata" -U postgres -A trust >/dev/null
  fi
  log "starting PostgreSQL on $PG_HOST:$PG_PORT"
  as_postgres_owner "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w start \
    -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k /tmp" >/dev/null
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    install_packages redis-server
  fi
  mkdir -p "$DATA_DIR/redis"
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$DATA_DIR/redis" --logfile "$DATA_DIR/redis/server.log"
}

if port_open "$PG_HOST" "$PG_PORT"; then
  log "PostgreSQL is up on $PG_HOST:$PG_PORT"
else
  start_postgres
  wait_for_port PostgreSQL "$PG_HOST" "$PG_PORT"
fi

if port_open 127.0.0.1 "$REDIS_PORT"; then
  log "Redis is up on 127.0.0.1:$REDIS_PORT"
else
  start_redis
  wait_for_port Redis 127.0.0.1 "$REDIS_PORT"
fi

if command -v psql >/dev/null; then
  psql_cmd=(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAq)
  if [ -z "$("${psql_cmd[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE_NAME'")" ]; then
    log "creating database $DATABASE_NAME"
    "${psql_cmd[@]}" -c "CREATE DATABASE $DATABASE_NAME"
  fi
fi
