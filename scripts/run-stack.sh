#!/usr/bin/env bash
# `make run`: web, worker and beat side by side in the foreground. Ctrl-C (or any one of them
# exiting) stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

entrypoint=docker/entrypoint.sh
export BEAT_SCHEDULE_FILE="${BEAT_SCHEDULE_FILE:-$PWD/.data/celerybeat-schedule}"
export WEB_WORKER_TMP_DIR="${WEB_WORKER_TMP_DIR:-/tmp}"
mkdir -p .data

pids=()
stop_all() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_all INT TERM EXIT

"$entrypoint" web & pids+=($!)
"$entrypoint" worker & pids+=($!)
"$entrypoint" beat & pids+=($!)

echo "die-hard is up: http://localhost:8000/api/v1/users/ (Ctrl-C stops web, worker and beat)" >&2
wait -n "${pids[@]}"
