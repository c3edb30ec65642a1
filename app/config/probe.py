"""Exec probes of the worker, beat and relay roles: `python -m app.config.probe CHECK`.

They read files that the running process keeps fresh (app/core/heartbeat.py), so a probe never
makes a broker round trip: a slow or restarting Redis cannot get a healthy worker restarted.
Exit status 0 means healthy; otherwise one line on stderr says why.

    worker-live    the worker's heartbeat is fresh (its main process is alive and responsive)
    worker-ready   the worker's last dependency check (PostgreSQL, broker, ClickHouse) passed
                   and is fresh
    beat-live      beat's heartbeat is fresh
    relay-live     the foreground relay's (`manage.py outbox_relay`) heartbeat is fresh
    relay-ready    the relay's last check of PostgreSQL and ClickHouse passed and is fresh

The kubelet runs these every few seconds in every pod, so they stay cheap: PROBE_DIR and
PROBE_INTERVAL come from their settings block through the one `env`, and neither Django's
settings nor Celery are loaded.
"""

import sys
from pathlib import Path

from app.core.heartbeat_files import check_fresh, check_ready, heartbeat_path, readiness_path

from .env import ImproperlyConfigured

# check: (role, whether it checks readiness rather than liveness)
CHECKS: dict[str, tuple[str, bool]] = {
    "worker-live": ("worker", False),
    "worker-ready": ("worker", True),
    "beat-live": ("beat", False),
    "relay-live": ("relay", False),
    "relay-ready": ("relay", True),
}
EX_CONFIG = 78


def run_check(check: str, *, directory: Path, interval: float) -> str | None:
    """None when `check` passes, else why it fails."""
    role, readiness = CHECKS[check]
    if readiness:
        return check_ready(readiness_path(directory, role), interval=interval)
    return check_fresh(heartbeat_path(directory, role), interval=interval)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        sys.stderr.write(f"usage: python -m app.config.probe {{{','.join(CHECKS)}}}\n")
        return 64
    try:
        from .blocks.probes import PROBE_DIR, PROBE_INTERVAL
    except ImproperlyConfigured as error:
        sys.stderr.write(f"{argv[0]}: configuration error: {error}\n")
        return EX_CONFIG
    problem = run_check(argv[0], directory=PROBE_DIR, interval=PROBE_INTERVAL)
    if problem:
        sys.stderr.write(f"{argv[0]}: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
