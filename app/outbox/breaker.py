"""The relay's circuit breaker: one per process, shared by every relay in it.

When ClickHouse (or the way to it) fails, the relay backs off as a whole: it stops calling
ClickHouse for a capped, jittered, exponentially growing delay, instead of rewriting the rows of
every batch each tick. The batch that failed keeps its identity and its place in line (see
app/outbox/batches.py); nothing is dead-lettered for an infrastructure failure. After the delay
one batch is let through as a trial: success closes the breaker, failure opens it for longer.
"""

import os
import random
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from app.core.metrics import OUTBOX_BREAKER_STATE, BreakerGauge


@dataclass(frozen=True)
class BreakerState:
    open: bool
    consecutive_failures: int
    retry_in_seconds: float
    last_error: str


class CircuitBreaker:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Closed, with a fresh lock (also what a forked child starts with)."""
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._open_until = 0.0
        self._last_error = ""
        OUTBOX_BREAKER_STATE.set(BreakerGauge.CLOSED)

    def allows_call(self) -> bool:
        with self._lock:
            allowed = time.monotonic() >= self._open_until
            if allowed and self._consecutive_failures:
                # The delay is over: the next batch is the trial.
                OUTBOX_BREAKER_STATE.set(BreakerGauge.HALF_OPEN)
            return allowed

    def record_success(self) -> bool:
        """Close the breaker; True when it was failing until now."""
        with self._lock:
            was_failing = self._consecutive_failures > 0
            self._consecutive_failures = 0
            self._open_until = 0.0
            OUTBOX_BREAKER_STATE.set(BreakerGauge.CLOSED)
            return was_failing

    def record_failure(self, error: str) -> float:
        """Open the breaker; returns for how many seconds."""
        with self._lock:
            self._consecutive_failures += 1
            exponent = min(self._consecutive_failures - 1, 30)
            base: float = settings.OUTBOX_BACKOFF_BASE
            cap: float = settings.OUTBOX_BACKOFF_MAX
            jitter = random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)
            delay = min(base * 2.0**exponent, cap) * jitter
            self._open_until = time.monotonic() + delay
            self._last_error = error
            OUTBOX_BREAKER_STATE.set(BreakerGauge.OPEN)
            return delay

    def state(self) -> BreakerState:
        with self._lock:
            return BreakerState(
                open=time.monotonic() < self._open_until,
                consecutive_failures=self._consecutive_failures,
                retry_in_seconds=max(0.0, self._open_until - time.monotonic()),
                last_error=self._last_error,
            )


relay_breaker = CircuitBreaker()
# A forked child (Celery's prefork pool) starts closed, with a lock nobody holds.
os.register_at_fork(after_in_child=relay_breaker.reset)
