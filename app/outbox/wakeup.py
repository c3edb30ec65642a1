"""Wake the relay right after a commit that published events, without touching the request.

The wake-up is sent from a background thread, at most once per `OUTBOX_WAKEUP_MIN_INTERVAL`
per process: a slow or unreachable broker never delays or fails a request, and a burst of
commits sends one message, not thousands. Correctness never depends on it: beat ticks every
`OUTBOX_RELAY_INTERVAL` seconds anyway.
"""

import os
import threading
import time

import structlog
from celery import current_app
from django.conf import settings
from django.db import transaction

logger = structlog.get_logger(__name__)

RELAY_TASK_NAME = "outbox.relay"


class _RelayWaker:
    def __init__(self) -> None:
        self._requested = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        self._ensure_thread()
        self._requested.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="outbox-relay-waker", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._requested.wait()
            self._requested.clear()
            try:
                # The app that app.config creates when Django is ready.
                current_app.send_task(
                    RELAY_TASK_NAME,
                    queue=settings.OUTBOX_QUEUE,
                    expires=settings.OUTBOX_RELAY_INTERVAL,
                    retry=False,
                )
            except Exception as error:
                logger.warning("outbox_wakeup_failed", error=str(error))
            time.sleep(settings.OUTBOX_WAKEUP_MIN_INTERVAL)


_waker = _RelayWaker()
# A forked child gets a fresh waker: the parent's thread is not running there, and its lock may
# have been copied while held.
os.register_at_fork(after_in_child=lambda: globals().update(_waker=_RelayWaker()))


def relay_wakeup_after_commit(*, using: str) -> None:
    transaction.on_commit(_waker.request, using=using)
