#!/usr/bin/env bash
# `make run`: web, worker and beat side by side in the foreground. Ctrl-C (or any one of them
# exiting) stops all of them.
#
# The embedded ClickHouse engine (CLICKHOUSE_URL=chdb://<path>, the development default) can be
# opened by one process only, so here it is served over ClickHouse's HTTP interface on
# 127.0.0.1:${CLICKHOUSE_DEVSERVER_PORT:-8123} and every role talks HTTP to it, as in production.
set -euo pipefail
cd "$(dirname "$0")/.."

entrypoint=docker/entrypoint.sh
export BEAT_SCHEDULE_FILE="${BEAT_SCHEDULE_FILE:-$PWD/.data/celerybeat-schedule}"
export WEB_WORKER_TMP_DIR="${WEB_WORKER_TMP_DIR:-/tmp}"
mkdir -p .data

pids=()
clickhouse_url=$(DJANGO_SETTINGS_MODULE=app.config.settings python -c \
  'import django; django.setup(); from django.conf import settings; print(settings.CLICKHOUSE_URL)' \
  | tail -n 1)

stop_all() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_all INT TERM EXIT

if [[ "$clickhouse_url" == chdb://* ]]; then
  port="${CLICKHOUSE_DEVSERVER_PORT:-8123}"
  python -m devtools.clickhouse_http --path "${clickhouse_url#chdb://}" --host 127.0.0.1 --port "$port" &
  pids+=($!)
  export CLICKHOUSE_URL="http://127.0.0.1:$port/"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
fi

# Each role serves /metrics on a port of its own (METRICS_BIND; in a pod every role has 9100).
METRICS_BIND=127.0.0.1:9100 "$entrypoint" web & pids+=($!)
METRICS_BIND=127.0.0.1:9101 "$entrypoint" worker & pids+=($!)
METRICS_BIND=127.0.0.1:9102 "$entrypoint" beat & pids+=($!)

echo "die-hard is up: http://localhost:8000/api/v1/users/ (Ctrl-C stops web, worker and beat)" >&2
echo "metrics: web http://localhost:9100/metrics, worker :9101, beat :9102" >&2
wait -n "${pids[@]}"
