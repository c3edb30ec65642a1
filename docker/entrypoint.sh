#!/usr/bin/env bash
# One image, several roles: `entrypoint.sh ROLE [extra args]`. Each role execs its process so
# that signals from Kubernetes (or Ctrl-C) reach it directly.
set -euo pipefail

role="${1:-}"
[ $# -gt 0 ] && shift

# Wait for backing services before exec'ing the role, logging what is awaited. Run in the
# background so a SIGTERM while waiting (this script may be PID 1) ends the wait at once.
wait_for() {
  python manage.py wait_for_dependencies "$@" &
  local waiter=$!
  trap 'kill -TERM "$waiter" 2>/dev/null; exit 143' TERM INT
  wait "$waiter"
  trap - TERM INT
}

case "$role" in
  web)
    # gunicorn itself reads WEB_CONCURRENCY and fails on an empty one; empty means unset here.
    [ -n "${WEB_CONCURRENCY:-}" ] || unset WEB_CONCURRENCY
    exec gunicorn --config python:app.config.gunicorn "$@" app.config.wsgi
    ;;
  worker)
    wait_for database broker
    # Queues and concurrency come from the settings (WORKER_QUEUES, WORKER_CONCURRENCY).
    exec celery --quiet --app app.config.celery worker \
      --hostname "worker@%h" \
      --without-mingle --without-gossip \
      "$@"
    ;;
  beat)
    wait_for broker
    # The schedule file comes from the settings (BEAT_SCHEDULE_FILE).
    exec celery --quiet --app app.config.celery beat "$@"
    ;;
  migrate)
    # Waits for both databases (fails after --timeout), then PostgreSQL and ClickHouse schemas.
    exec python manage.py migrate_databases "$@"
    ;;
  relay)
    wait_for database
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
