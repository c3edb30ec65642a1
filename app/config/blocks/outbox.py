"""The outbox relay: batching, time budget, retries and the relay schedule."""

from django.core.exceptions import ImproperlyConfigured

from ..env import env

# Rows per ClickHouse insert (one insert per batch).
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=5000)
# Seconds one relay task keeps draining before it hands over to the next tick.
OUTBOX_RELAY_TIME_BUDGET = env.float("OUTBOX_RELAY_TIME_BUDGET", default=20.0)
# Seconds between beat's relay ticks (and the idle sleep of `manage.py outbox_relay`).
OUTBOX_RELAY_INTERVAL = env.float("OUTBOX_RELAY_INTERVAL", default=1.0)
# Failed attempts after which a row is dead-lettered.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
# Retry delay: min(BASE * 2**attempts, MAX) seconds, times a random factor in [0.5, 1].
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=1.0)
# The longest retry delay, in seconds (see OUTBOX_BACKOFF_BASE).
OUTBOX_BACKOFF_MAX = env.float("OUTBOX_BACKOFF_MAX", default=600.0)
# Per process, at most one relay wake-up per this many seconds after commits.
OUTBOX_WAKEUP_MIN_INTERVAL = env.float("OUTBOX_WAKEUP_MIN_INTERVAL", default=0.1)
OUTBOX_QUEUE = "outbox"

for _name, _value in (
    ("OUTBOX_BATCH_SIZE", OUTBOX_BATCH_SIZE),
    ("OUTBOX_RELAY_TIME_BUDGET", OUTBOX_RELAY_TIME_BUDGET),
    ("OUTBOX_RELAY_INTERVAL", OUTBOX_RELAY_INTERVAL),
    ("OUTBOX_MAX_ATTEMPTS", OUTBOX_MAX_ATTEMPTS),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive, got {_value}")
