"""Serving GET /metrics on METRICS_BIND, a port of its own per role (never the public web port).

Roles whose work runs in forked children — gunicorn's workers, the Celery worker's prefork
pool — use prometheus_client's multiprocess mode: each process writes its values to files in a
directory, and the parent, which serves the endpoint, adds them up at every scrape. The parent
chooses that directory (`metrics_multiprocess_prepare`) before anything imports
prometheus_client: the library picks its storage on import, from PROMETHEUS_MULTIPROC_DIR. The
directory is new at every start of the parent (in the pod: under /tmp, an emptyDir), so a
restarted container never adds up the counters of its previous life.

Beat and the relay command are single processes: they serve their own in-memory registry.

This module imports neither prometheus_client nor Django's settings at import time: gunicorn's
master (app/config/gunicorn.py) runs it before either may be loaded.
"""

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from .heartbeat_files import file_age, heartbeat_path

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

logger = structlog.get_logger(__name__)

MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# This process's value directory, in the parent that made it and the children it forked.
_multiprocess_directory: Path | None = None


class MetricsBindError(Exception):
    """METRICS_BIND cannot be served (the port is taken, the address is not local)."""


def _multiprocess_root() -> Path:
    try:
        return Path(tempfile.gettempdir()) / "die-hard-metrics"
    except FileNotFoundError:
        # No candidate ($TMPDIR, /tmp, /var/tmp, the working directory) is writable, and
        # tempfile's error names none of them. Try the usual one again so that its own error
        # names it: in a pod, a /tmp that is not a volume under the read-only root.
        fallback = Path("/tmp") / "die-hard-metrics"  # noqa: S108
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def metrics_multiprocess_prepare(role: str) -> Path:
    """Make a fresh value directory for this process and the children it will fork; call it in
    the parent, before prometheus_client is imported anywhere in the process."""
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before the metrics directory was chosen: "
            "its values would not be shared between processes"
        )
    root = _multiprocess_root()
    _remove_directories_of_dead_processes(root)
    directory = root / f"{role}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # prometheus_client's interface: it reads the variable when it is imported.
    os.environ[MULTIPROCESS_DIRECTORY_VARIABLE] = str(directory)  # noqa: TID251
    global _multiprocess_directory
    _multiprocess_directory = directory
    atexit.register(_remove_at_exit, directory, parent=os.getpid())
    return directory


def _remove_at_exit(directory: Path, *, parent: int) -> None:
    # The forked children exit through the same atexit handlers: only the parent cleans up.
    if os.getpid() == parent:
        shutil.rmtree(directory, ignore_errors=True)


def _remove_directories_of_dead_processes(root: Path) -> None:
    """Several roles can share a host (`make run`): each removes what a dead parent left."""
    if not root.is_dir():
        return
    for directory in root.iterdir():
        pid = directory.name.rpartition("-")[2]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def metrics_process_dead(pid: int) -> None:
    """A child exited: its `live*` gauges (the breaker state) stop counting."""
    if _multiprocess_directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(_multiprocess_directory))


def metrics_serve(
    address: tuple[str, int], *, role: str, collectors: Iterable["Collector"] = ()
) -> None:
    """Serve /metrics on `address` from a daemon thread: every process's values when this
    process runs in multiprocess mode, else its own; plus `collectors`, computed per scrape."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if _multiprocess_directory is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(_multiprocess_directory))
    else:
        registry = REGISTRY
    for collector in collectors:
        registry.register(collector)
    host, port = address
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise MetricsBindError(f"METRICS_BIND {host}:{port} cannot be served: {error}") from error
    # Children forked later (gunicorn workers, the prefork pool) must not keep the port bound
    # after this process is gone: a replacement could not bind it.
    os.register_at_fork(after_in_child=server.socket.close)
    logger.info("metrics_serving", role=role, bind=f"{host}:{port}")


class HeartbeatAgeCollector:
    """die_hard_heartbeat_age_seconds{role}: seconds since `role` last refreshed its heartbeat
    file (app/core/heartbeat.py), read at scrape time; absent until the first heartbeat."""

    NAME = "die_hard_heartbeat_age_seconds"
    DOCUMENTATION = "Seconds since this role last refreshed its liveness heartbeat."

    def __init__(self, directory: Path, role: str) -> None:
        self.path = heartbeat_path(directory, role)
        self.role = role

    def describe(self) -> Iterator["Metric"]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["role"])

    def collect(self) -> Iterator["Metric"]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(self.NAME, self.DOCUMENTATION, labels=["role"])
        age = file_age(self.path)
        if age is not None:
            family.add_metric([self.role], max(age, 0.0))
        yield family
