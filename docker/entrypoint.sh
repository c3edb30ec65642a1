#!/usr/bin/env bash
# One image, several roles: `entrypoint.sh ROLE [extra args]`. Each role execs its process so
# that signals from Kubernetes (or Ctrl-C) reach it directly.
set -euo pipefail

role="${1:-}"
[ $# -gt 0 ] && shift

case "$role" in
  web)
    exec gunicorn --config python:app.gunicorn_conf "$@" app.wsgi
    ;;
  worker)
    exec celery --quiet --app app worker \
      --queues "${WORKER_QUEUES:-outbox,default}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" \
      --hostname "worker@%h" \
      --without-mingle --without-gossip \
      "$@"
    ;;
  beat)
    exec celery --quiet --app app beat \
      --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" \
      "$@"
    ;;
  migrate)
    # PostgreSQL first, then the ClickHouse schema; both are idempotent.
    python manage.py migrate --noinput "$@"
    exec python manage.py clickhouse_migrate
    ;;
  relay)
    exec python manage.py outbox_relay "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "usage: $0 {web|worker|beat|migrate|relay|manage} [args...]" >&2
    exit 64
    ;;
esac
