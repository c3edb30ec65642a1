import signal
import threading
import time
from types import FrameType
from typing import Any

import sentry_sdk
import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import Error as DatabaseError
from django.db import connection

from app.core.dependencies import check_clickhouse, check_database
from app.core.heartbeat import HealthReporter, ProgressHeartbeat
from app.outbox.metrics import outbox_role_metrics_serve
from app.outbox.services import outbox_relay_drain

logger = structlog.get_logger(__name__)
# The longest pause after PostgreSQL errors, in seconds.
_DATABASE_BACKOFF_CAP = 30.0


class Command(BaseCommand):
    help = (
        "Run the outbox relay as a foreground loop (an alternative to the Celery worker). "
        "SIGTERM or SIGINT stops it between batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.OUTBOX_BATCH_SIZE)
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.OUTBOX_RELAY_INTERVAL,
            help="Seconds to sleep when nothing is due.",
        )
        parser.add_argument("--once", action="store_true", help="Drain once, then exit.")

    def handle(
        self, *args: Any, batch_size: int, interval: float, once: bool, **options: Any
    ) -> None:
        stopping = threading.Event()

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            self.stderr.write(f"outbox_relay: {signal.Signals(signum).name}, stopping")
            stopping.set()

        previous_handlers = {
            signum: signal.signal(signum, request_stop)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        # The relay role's probes (`python -m app.config.probe relay-live|relay-ready`): liveness
        # follows this loop's progress (a batch takes at most its lease, or the loop is stuck and
        # must be restarted), readiness whether PostgreSQL and ClickHouse answer.
        heartbeat = ProgressHeartbeat("relay", stale_after=settings.OUTBOX_LEASE_SECONDS)
        if not once:
            heartbeat.start()
            HealthReporter(
                "relay", dependencies={"database": check_database, "clickhouse": check_clickhouse}
            ).start()
            outbox_role_metrics_serve(role="relay")

        def between_batches() -> bool:
            """Called before every batch: the loop is turning; stop if asked."""
            heartbeat.progress()
            return stopping.is_set()

        def pause(seconds: float) -> None:
            """Wait (the loop is well) unless asked to stop."""
            deadline = time.monotonic() + seconds
            while not stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                heartbeat.progress()
                stopping.wait(min(left, settings.PROBE_INTERVAL))

        database_failures = 0
        try:
            while not between_batches():
                try:
                    with sentry_sdk.start_transaction(op="queue.process", name="outbox_relay"):
                        drained = outbox_relay_drain(
                            batch_size=batch_size, should_stop=between_batches
                        )
                except DatabaseError as error:
                    # PostgreSQL restarting, failing over, or cutting connections: back off and
                    # go on; a crash would only turn a blip into CrashLoopBackOff.
                    database_failures += 1
                    retry_in = min(
                        settings.OUTBOX_BACKOFF_BASE * 2 ** (database_failures - 1),
                        _DATABASE_BACKOFF_CAP,
                    )
                    logger.warning(
                        "outbox_relay_database_error", error=str(error), retry_in_s=retry_in
                    )
                    connection.close()
                    if once:
                        raise
                    pause(retry_in)
                    continue
                database_failures = 0
                if once:
                    break
                if drained.relayed == 0:
                    pause(interval)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
