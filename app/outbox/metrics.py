"""The outbox backlog as Prometheus gauges, measured by one process of the deployment at a time.

Every worker, beat and relay process that serves metrics exports the same four gauges
(die_hard_outbox_pending_events, _due_events, _oldest_pending_age_seconds,
_dead_lettered_events), so dashboards and alerts read them with `max()`. They must not cost a
PostgreSQL query per scrape per pod: a thread of each such process wakes every
METRICS_OUTBOX_REFRESH_SECONDS, and only the one that takes that interval's Redis lock queries
PostgreSQL (app/outbox/selectors.py) and shares the result through the cache; the others read
it from there. A scrape reads memory only. The oldest pending age is computed at scrape time
from when that row was published, so it grows smoothly between measurements.

The measurement is dropped (the gauges disappear) once it is older than three intervals — Redis
or PostgreSQL unreachable — rather than exported stale.
"""

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from app.core.metrics_server import HeartbeatAgeCollector, metrics_serve

from .selectors import OutboxBacklog, outbox_backlog

logger = structlog.get_logger(__name__)

# A measurement older than this many intervals is not exported.
_STALE_AFTER = 3
_GAUGES = {
    "pending": (
        "die_hard_outbox_pending_events",
        "Outbox events not yet relayed to ClickHouse (dead-lettered ones excluded).",
    ),
    "due": (
        "die_hard_outbox_due_events",
        "Pending outbox events a relay may take now (not leased by a live batch, not backing off).",
    ),
    "oldest_age": (
        "die_hard_outbox_oldest_pending_age_seconds",
        "Seconds since the oldest pending outbox event was published; 0 when none is pending.",
    ),
    "dead": (
        "die_hard_outbox_dead_lettered_events",
        "Outbox events dead-lettered (ClickHouse kept rejecting them), waiting for a requeue.",
    ),
}


def _cache_key(suffix: str) -> str:
    """Per outbox (database): deployments that share a Redis database never mix their figures."""
    database = connection.settings_dict
    outbox = f"{database['HOST']}:{database['PORT']}/{database['NAME']}"
    digest = hashlib.sha256(outbox.encode()).hexdigest()[:16]
    return f"die-hard:metrics:outbox-backlog:{suffix}:{digest}"


def outbox_backlog_measure(*, interval: float) -> tuple[float, OutboxBacklog] | None:
    """The latest backlog of the deployment and when it was measured (epoch seconds): measured
    here when this process takes the interval's turn, else as another process measured it."""
    if cache.add(_cache_key("turn"), os.getpid(), timeout=max(1, round(interval))):
        try:
            backlog = outbox_backlog()
        finally:
            # Held between measurements, a connection would be inherited by forked children.
            connection.close()
        measured = (time.time(), backlog)
        cache.set(_cache_key("measurement"), measured, timeout=interval * _STALE_AFTER)
        return measured
    shared: tuple[float, OutboxBacklog] | None = cache.get(_cache_key("measurement"))
    return shared


class OutboxBacklogCollector(threading.Thread):
    """The thread that keeps the latest measurement, and the collector that exports it."""

    def __init__(self, *, interval: float) -> None:
        super().__init__(name="outbox-backlog-metrics", daemon=True)
        self.interval = interval
        self.latest: tuple[float, OutboxBacklog] | None = None
        self._failing = False

    def run(self) -> None:
        while True:
            self.refresh()
            time.sleep(self.interval)

    def refresh(self) -> None:
        try:
            measured = outbox_backlog_measure(interval=self.interval)
        except Exception as error:
            if not self._failing:  # log the change only, not every interval of an outage
                logger.warning("outbox_backlog_metrics_unavailable", error=str(error))
            self._failing = True
            return
        if self._failing:
            logger.info("outbox_backlog_metrics_available")
        self._failing = False
        if measured is not None:
            self.latest = measured

    def describe(self) -> Iterator[Metric]:
        for name, documentation in _GAUGES.values():
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[Metric]:
        latest = self.latest
        now = time.time()
        if latest is None or now - latest[0] > self.interval * _STALE_AFTER:
            return
        backlog = latest[1]
        values = {
            "pending": backlog.pending,
            "due": backlog.due,
            "oldest_age": _age(backlog.oldest_pending_since, now),
            "dead": backlog.dead,
        }
        for key, (name, documentation) in _GAUGES.items():
            yield GaugeMetricFamily(name, documentation, value=values[key])


def _age(since: datetime | None, now: float) -> float:
    return max(0.0, now - since.timestamp()) if since is not None else 0.0


def outbox_role_metrics_serve(*, role: str) -> None:
    """Serve the metrics of a role that relays or schedules (worker, beat, relay) on
    METRICS_BIND, unless it is `off`: what its processes recorded, its heartbeat age and the
    outbox backlog."""
    if settings.METRICS_ADDRESS is None:
        return
    backlog = OutboxBacklogCollector(interval=settings.METRICS_OUTBOX_REFRESH_SECONDS)
    metrics_serve(
        settings.METRICS_ADDRESS,
        role=role,
        collectors=[HeartbeatAgeCollector(settings.PROBE_DIR, role), backlog],
    )
    backlog.start()
