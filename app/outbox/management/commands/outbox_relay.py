import signal
import threading
from types import FrameType
from typing import Any

import sentry_sdk
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from app.core.dependencies import check_clickhouse, check_database
from app.core.heartbeat import HealthReporter
from app.outbox.services import outbox_relay_drain


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
        if not once:
            # For the relay role's exec probes (`python -m app.config.probe relay-live`, ...).
            HealthReporter(
                "relay", dependencies={"database": check_database, "clickhouse": check_clickhouse}
            ).start()
        try:
            while not stopping.is_set():
                with sentry_sdk.start_transaction(op="queue.process", name="outbox_relay"):
                    drained = outbox_relay_drain(batch_size=batch_size, should_stop=stopping.is_set)
                if once:
                    break
                if drained.relayed == 0:
                    stopping.wait(interval)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
