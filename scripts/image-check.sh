#!/usr/bin/env bash
# Runs the built image as the chart does (uid 10001, read-only root, a /tmp tmpfs, no
# capabilities, no privilege escalation) with podman on the host network, against this machine's
# PostgreSQL and Redis: the migrate role (ClickHouse: the development front, devtools/, on the
# host), then the web role: /healthz/ready with an IP as Host, and a 201 registration. Also: the
# worker's exec probe runs (exit 1, no heartbeat yet), /app holds no devtools/ nor tests/, and
# the image's packages are uv.lock's runtime packages at their locked versions.
# A throwaway database die_hard_image is created and dropped. Usage: scripts/image-check.sh [IMAGE]
set -euo pipefail
export PGOPTIONS="--client-min-messages=warning"

root="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-die-hard:$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)}"
database=die_hard_image
port="${IMAGE_CHECK_PORT:-18765}"
work="$(mktemp -d)"
web=""
ch=""
cleanup() {
  [ -z "$web" ] || podman rm --force "$web" >/dev/null
  [ -z "$ch" ] || kill "$ch" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
"$root/.venv/bin/python" -m devtools.clickhouse_http --path "$work/clickhouse" --port 0 >"$work/ch.out" &
ch=$!
for _ in $(seq 120); do grep -q '^listening' "$work/ch.out" && break; sleep 0.5; done
clickhouse="$(sed -n 's/^listening //p' "$work/ch.out")"
[ -n "$clickhouse" ] || fail "the development ClickHouse front did not start"

chart_like=(--user 10001:10001 --read-only --tmpfs /tmp --cap-drop ALL
  --security-opt no-new-privileges --network host
  -e DEBUG=false -e SECRET_KEY=image-check-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz
  -e ALLOWED_HOSTS=api.example.com -e "DATABASE_URL=postgres://postgres@127.0.0.1:5432/$database"
  -e REDIS_URL=redis://127.0.0.1:6379/12)

echo "== migrate"
podman run --rm "${chart_like[@]}" -e "CLICKHOUSE_URL=http://$clickhouse/" "$image" migrate
kill "$ch"
ch=""

echo "== web"
web="$(podman run --detach "${chart_like[@]}" -e CLICKHOUSE_URL=http://127.0.0.1:1/ \
  -e "WEB_BIND=127.0.0.1:$port" "$image" web)"
ready=""
for _ in $(seq 60); do
  ready="$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: 127.0.0.1' "http://127.0.0.1:$port/healthz/ready" || true)"
  [ "$ready" = 200 ] && break
  sleep 0.5
done
[ "$ready" = 200 ] || { podman logs "$web" >&2; fail "/healthz/ready answered $ready"; }
echo "GET /healthz/ready (Host 127.0.0.1): 200"
registered="$(curl -s -o "$work/user.json" -w '%{http_code}' -H 'Host: api.example.com' \
  -H 'X-Forwarded-Proto: https' -H 'Content-Type: application/json' \
  -d '{"email": "image-check@example.com", "password": "correct horse battery staple 42"}' \
  "http://127.0.0.1:$port/api/v1/users/")"
[ "$registered" = 201 ] || fail "registration answered $registered: $(cat "$work/user.json")"
echo "POST /api/v1/users/ (Host api.example.com, X-Forwarded-Proto https): 201 $(cat "$work/user.json")"
echo "web runs as: $(podman exec "$web" id)"

echo "== the image"
status=0
probe="$(podman run --rm "${chart_like[@]}" --entrypoint python "$image" -m app.config.probe worker-live 2>&1)" || status=$?
[ "$status" = 1 ] && ! grep -q Error <<<"$probe" || fail "worker-live probe: exit $status: $probe"
echo "python -m app.config.probe worker-live: exit 1, $probe"
extra="$(podman run --rm --entrypoint sh "$image" -c 'ls -d /app/devtools /app/tests /app/bench 2>/dev/null || true')"
[ -z "$extra" ] || fail "the image holds $extra"
echo "/app: $(podman run --rm --entrypoint ls "$image" /app | tr '\n' ' ')"
# The image's packages are the lock's runtime packages, at the lock's versions (a stale
# dependency layer, reused from a build of an older lock, shows here).
"${UV:-uv}" export --project "$root" --frozen --no-dev --no-hashes \
  --no-emit-project --no-header --no-annotate | grep '==' >"$work/locked"
podman run --rm -i --entrypoint python "$image" -c '
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.markers import Marker
differences = []
for line in sys.stdin:
    requirement, _, marker = line.partition(";")
    name, locked = (part.strip() for part in requirement.split("=="))
    if marker.strip() and not Marker(marker.strip()).evaluate():
        continue  # not for this interpreter or platform
    try:
        installed = version(name)
    except PackageNotFoundError:
        installed = None
    if installed != locked:
        differences.append(f"{name}: locked {locked}, image {installed}")
sys.exit("\n".join(differences) or None)' <"$work/locked" || fail "the image's packages differ from uv.lock (above)"
echo "packages: uv.lock's runtime set ($(wc -l <"$work/locked") lines), each at its locked version"
echo "size: $(podman image inspect "$image" --format '{{.Size}}') bytes"
