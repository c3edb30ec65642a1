"""Exec probes for the worker and beat: `python -m app.core.probe CHECK`.

They read files that the running process keeps fresh (app/core/heartbeat.py), so a probe never
makes a broker round trip: a slow or restarting Redis cannot get a healthy worker restarted.
Exit status 0 means healthy; otherwise one line on stderr says why.

    worker-live    the worker's heartbeat is fresh (its main process is alive and responsive)
    worker-ready   the worker's last dependency check (PostgreSQL, broker, ClickHouse) passed
                   and is fresh
    beat-live      beat's heartbeat is fresh
    relay-live     the foreground relay's (`manage.py outbox_relay`) heartbeat is fresh
    relay-ready    the relay's last check of PostgreSQL and ClickHouse passed and is fresh
"""

import json
import os
import sys
import time
from pathlib import Path

PROBE_DIR = Path(os.environ.get("PROBE_DIR", "/tmp/die-hard"))  # noqa: S108
# How often the processes refresh their files; a file older than STALE_AFTER intervals fails.
PROBE_INTERVAL = float(os.environ.get("PROBE_INTERVAL", "10"))
STALE_AFTER = 3


def heartbeat_path(role: str) -> Path:
    return PROBE_DIR / f"{role}.heartbeat"


def readiness_path(role: str) -> Path:
    return PROBE_DIR / f"{role}.ready.json"


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def check_fresh(path: Path) -> str | None:
    """None when `path` was refreshed recently, else the reason it is not."""
    age = _age(path)
    if age is None:
        return f"{path} does not exist (yet)"
    if age > PROBE_INTERVAL * STALE_AFTER:
        return f"{path} is {age:.0f}s old (limit {PROBE_INTERVAL * STALE_AFTER:.0f}s)"
    return None


def check_ready(path: Path) -> str | None:
    if problem := check_fresh(path):
        return problem
    failing = {name: state for name, state in json.loads(path.read_text()).items() if state != "ok"}
    return f"unavailable: {failing}" if failing else None


CHECKS = {
    "worker-live": lambda: check_fresh(heartbeat_path("worker")),
    "worker-ready": lambda: check_ready(readiness_path("worker")),
    "beat-live": lambda: check_fresh(heartbeat_path("beat")),
    "relay-live": lambda: check_fresh(heartbeat_path("relay")),
    "relay-ready": lambda: check_ready(readiness_path("relay")),
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        sys.stderr.write(f"usage: python -m app.core.probe {{{','.join(CHECKS)}}}\n")
        return 64
    problem = CHECKS[argv[0]]()
    if problem:
        sys.stderr.write(f"{argv[0]}: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
