"""What the worker, beat and relay write for their exec probes (read by app/config/probe.py).

Liveness and readiness come from different threads. The heartbeat (liveness) is refreshed every
PROBE_INTERVAL seconds by a thread of its own in the worker and beat (and by the relay loop
itself), never tied to the broker connection (beat's loop, for one, blocks while Redis is away)
or to a dependency check: a stalled or unreachable dependency cannot get a healthy process
restarted. A second thread records whether PostgreSQL, the broker and ClickHouse answer, for
readiness.
"""

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from django.conf import settings

from .heartbeat_files import heartbeat_path, readiness_path

logger = structlog.get_logger(__name__)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(content)
    partial.replace(path)


def heartbeat_touch(role: str) -> None:
    """`role` is alive and responsive: refresh its liveness file."""
    touch(heartbeat_path(settings.PROBE_DIR, role))


class Heartbeat(threading.Thread):
    """Refreshes `role`'s heartbeat every interval, and does nothing else: no dependency check
    can delay it, so a stalled database or ClickHouse never gets a healthy process restarted.

    For the worker and beat, whose main loops Celery owns. The relay loop's heartbeat follows
    its progress instead (ProgressHeartbeat), so that a loop that is stuck shows as dead.
    """

    def __init__(self, role: str):
        super().__init__(name=f"{role}-heartbeat", daemon=True)
        self.role = role

    def run(self) -> None:
        while True:
            heartbeat_touch(self.role)
            time.sleep(settings.PROBE_INTERVAL)


class ProgressHeartbeat(threading.Thread):
    """Refreshes `role`'s heartbeat while its loop makes progress (`progress()` is called at
    least every `stale_after` seconds), so that a loop that is stuck fails its liveness probe
    while one that waits, within its bounds, on a slow dependency does not."""

    def __init__(self, role: str, *, stale_after: float):
        super().__init__(name=f"{role}-heartbeat", daemon=True)
        self.role = role
        self.stale_after = stale_after
        self._last_progress = time.monotonic()

    def progress(self) -> None:
        self._last_progress = time.monotonic()

    def run(self) -> None:
        while True:
            if time.monotonic() - self._last_progress <= self.stale_after:
                heartbeat_touch(self.role)
            time.sleep(settings.PROBE_INTERVAL)


class HealthReporter(threading.Thread):
    """Records which dependencies answer, every interval, for `role`'s readiness probe.

    Each check is bounded by its own timeout (app/core/dependencies.py); while one hangs the
    readiness file ages and the probe fails, which is what readiness is for.
    """

    def __init__(self, role: str, dependencies: dict[str, Callable[[], None]]):
        super().__init__(name=f"{role}-health-reporter", daemon=True)
        self.role = role
        self.dependencies = dependencies
        self._last_states: dict[str, str] = {}

    def run(self) -> None:
        while True:
            states = {name: self._check(name, check) for name, check in self.dependencies.items()}
            write_atomically(readiness_path(settings.PROBE_DIR, self.role), json.dumps(states))
            self._last_states = states
            time.sleep(settings.PROBE_INTERVAL)

    def _check(self, name: str, check: Callable[[], None]) -> str:
        try:
            check()
        except Exception as error:
            # Log on the change only: an outage must not write a line every interval.
            if self._last_states.get(name) != "unavailable":
                logger.warning("dependency_unavailable", dependency=name, error=str(error))
            return "unavailable"
        if self._last_states.get(name) == "unavailable":
            logger.info("dependency_available", dependency=name)
        return "ok"


def worker_stop_marker(pid: int) -> Path:
    return settings.PROBE_DIR / f"worker-{pid}.stopping"


def worker_is_stopping() -> bool:
    """True once the worker running this task was asked to shut down (SIGTERM).

    The marker is written by the worker's main process; a task runs either in it (solo and
    thread pools) or in a child process of it (prefork).
    """
    return worker_stop_marker(os.getppid()).exists() or worker_stop_marker(os.getpid()).exists()
