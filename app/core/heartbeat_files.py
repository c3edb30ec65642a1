"""The files behind the exec probes: where they live and when they count as fresh.

Pure Python (no Django, no Celery): shared by the processes that write the files
(app/core/heartbeat.py) and by the probe command that reads them (app/config/probe.py).
"""

import json
import time
from pathlib import Path

# A file older than this many PROBE_INTERVALs fails its probe.
STALE_AFTER = 3


def heartbeat_path(directory: Path, role: str) -> Path:
    return directory / f"{role}.heartbeat"


def readiness_path(directory: Path, role: str) -> Path:
    return directory / f"{role}.ready.json"


def file_age(path: Path) -> float | None:
    """Seconds since `path` was last written; None when it does not exist."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def check_fresh(path: Path, *, interval: float) -> str | None:
    """None when `path` was refreshed within STALE_AFTER intervals, else the reason it is not."""
    age = file_age(path)
    limit = interval * STALE_AFTER
    if age is None:
        return f"{path} does not exist (yet)"
    if age > limit:
        return f"{path} is {age:.0f}s old (limit {limit:.0f}s)"
    return None


def check_ready(path: Path, *, interval: float) -> str | None:
    """None when the dependency states in `path` are fresh and all "ok", else what fails."""
    if problem := check_fresh(path, interval=interval):
        return problem
    states: dict[str, str] = json.loads(path.read_text())
    failing = {name: state for name, state in states.items() if state != "ok"}
    return f"unavailable: {failing}" if failing else None
