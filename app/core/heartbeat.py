"""What the worker, beat and relay write for their exec probes (read by app/config/probe.py).

The main process of the worker (and of beat) runs a reporter thread that refreshes a heartbeat
file every PROBE_INTERVAL seconds; the worker's also records, beside it, whether PostgreSQL, the
broker and ClickHouse answer. The heartbeat is deliberately not tied to the broker connection
(beat's loop, for one, blocks while Redis is away): liveness never depends on a dependency, so a
Redis blip cannot get a healthy process restarted.
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


class HealthReporter(threading.Thread):
    """Refreshes `role`'s heartbeat, then records which dependencies answer, every interval."""

    def __init__(self, role: str, dependencies: dict[str, Callable[[], None]]):
        super().__init__(name=f"{role}-health-reporter", daemon=True)
        self.role = role
        self.dependencies = dependencies
        self._last_states: dict[str, str] = {}

    def run(self) -> None:
        while True:
            touch(heartbeat_path(settings.PROBE_DIR, self.role))
            if self.dependencies:
                states = {
                    name: self._check(name, check) for name, check in self.dependencies.items()
                }
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
