"""The outbox relay: batching, time budget, retries and the relay schedule."""

from django.core.exceptions import ImproperlyConfigured

from ..env import env

# Rows per ClickHouse insert (one insert per batch).
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=5000)
# Seconds one relay task keeps draining before it hands over to the next tick.
OUTBOX_RELAY_TIME_BUDGET = env.float("OUTBOX_RELAY_TIME_BUDGET", default=20.0)
# Seconds between beat's relay ticks (and the idle sleep of `manage.py outbox_relay`).
OUTBOX_RELAY_INTERVAL = env.float("OUTBOX_RELAY_INTERVAL", default=1.0)
# Rejected attempts (ClickHouse refused the data) after which a batch's rows are dead-lettered.
# Infrastructure failures never count.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
# Retry delay after a failure: min(BASE * 2**failures, MAX) seconds, times a random factor in
# [0.5, 1]: of the whole relay (its circuit breaker) after an infrastructure failure, of the
# batch after rejected data.
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=1.0)
# The longest retry delay, in seconds (see OUTBOX_BACKOFF_BASE).
OUTBOX_BACKOFF_MAX = env.float("OUTBOX_BACKOFF_MAX", default=600.0)
# Per process, at most one relay wake-up per this many seconds after commits.
OUTBOX_WAKEUP_MIN_INTERVAL = env.float("OUTBOX_WAKEUP_MIN_INTERVAL", default=0.1)
# Seconds a relay owns the batch it claimed; a batch whose relay died (or hangs) longer is taken
# over whole and re-sent under the same deduplication token. Must exceed the longest insert.
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=60.0)
# ClickHouse inserts one batch may cost while isolating rejected rows (the first included).
OUTBOX_MAX_INSERTS_PER_BATCH = env.int("OUTBOX_MAX_INSERTS_PER_BATCH", default=32)
OUTBOX_QUEUE = "outbox"

for _name, _value in (
    ("OUTBOX_BATCH_SIZE", OUTBOX_BATCH_SIZE),
    ("OUTBOX_RELAY_TIME_BUDGET", OUTBOX_RELAY_TIME_BUDGET),
    ("OUTBOX_RELAY_INTERVAL", OUTBOX_RELAY_INTERVAL),
    ("OUTBOX_MAX_ATTEMPTS", OUTBOX_MAX_ATTEMPTS),
    ("OUTBOX_LEASE_SECONDS", OUTBOX_LEASE_SECONDS),
    ("OUTBOX_MAX_INSERTS_PER_BATCH", OUTBOX_MAX_INSERTS_PER_BATCH),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive, got {_value}")
