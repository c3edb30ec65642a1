"""The Prometheus metrics die-hard records, by name (docs/metrics.md lists them all).

Each role serves them on its own port (METRICS_BIND, app/core/metrics_server.py). Where a role's
work runs in forked children — gunicorn's workers, Celery's prefork pool — the values live in
files that the serving parent adds up (prometheus_client's multiprocess mode), so this module
must be imported only after that parent has chosen the directory; everything here is plain
module state, recorded from the code that does the work.
"""

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The `_created` series double every counter's series for nothing the dashboards use (and the
# multiprocess mode never has them): the same output whatever the role.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "die_hard_http_requests_total",
    "HTTP requests answered, by URL pattern (`unmatched` when none matched), method and status.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "die_hard_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

OUTBOX_RELAYED_EVENTS = Counter(
    "die_hard_outbox_relayed_events_total",
    "Outbox events inserted into ClickHouse and settled (deleted from the outbox).",
)
OUTBOX_RELAYED_BATCHES = Counter(
    "die_hard_outbox_relayed_batches_total",
    "Outbox batches settled after ClickHouse answered: rows delivered, rejected rows recorded.",
)
OUTBOX_RELAY_FAILURES = Counter(
    "die_hard_outbox_relay_failures_total",
    "Failed batch attempts, by reason: `unavailable` (ClickHouse unreachable, slow or refusing:"
    " the relay backs off) or `rejected` (ClickHouse refused some of the data).",
    ["reason"],
)
OUTBOX_DEAD_LETTERS = Counter(
    "die_hard_outbox_dead_letters_total",
    "Outbox events dead-lettered after ClickHouse rejected them OUTBOX_MAX_ATTEMPTS times.",
)
OUTBOX_BATCH_DURATION = Histogram(
    "die_hard_outbox_batch_duration_seconds",
    "Time from claiming a batch to settling it (inserts included).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
OUTBOX_RELAY_LAG = Histogram(
    "die_hard_outbox_relay_lag_seconds",
    "Per settled batch: from the creation of its oldest event to the batch settled in"
    " ClickHouse (an upper bound of every event's lag in the batch).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
OUTBOX_BREAKER_STATE = Gauge(
    "die_hard_outbox_breaker_state",
    "The relay's circuit breaker in this process: 0 closed, 1 half-open, 2 open.",
    # The worst of the live processes: a child that died open no longer counts.
    multiprocess_mode="livemax",
)


class FailureReason:
    """The `reason` label of die_hard_outbox_relay_failures_total."""

    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"


class BreakerGauge:
    """The values of die_hard_outbox_breaker_state."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


# Every reason exported from the start, at 0: rate() and alert rules need the series to exist
# before the first failure.
for _reason in (FailureReason.UNAVAILABLE, FailureReason.REJECTED):
    OUTBOX_RELAY_FAILURES.labels(reason=_reason)
