"""The outbox relay, as plain functions: Celery tasks, the management command and tests call
these directly.

One batch: claim it in a short PostgreSQL transaction (new rows, or a batch whose lease ran
out, taken over whole), send it to ClickHouse in one insert under its deduplication token with
no transaction open, then settle it in a second short transaction. See app/outbox/batches.py
for why that makes every retry exact, and docs/outbox.md for the whole design.

Failures are told apart by who is to blame (app/outbox/failures.py). Infrastructure — ClickHouse
down, slow, refusing credentials — backs the whole relay off (app/outbox/breaker.py) and never
counts against the rows. Data that ClickHouse rejects is isolated by splitting the batch, within
OUTBOX_MAX_INSERTS_PER_BATCH inserts, and only those rows count attempts toward dead-lettering.
"""

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sentry_sdk
import structlog
from django.conf import settings
from django.utils import timezone

from app.clickhouse.event_log import event_log_insert
from app.core.metrics import (
    OUTBOX_BATCH_DURATION,
    OUTBOX_DEAD_LETTERS,
    OUTBOX_RELAY_FAILURES,
    OUTBOX_RELAY_LAG,
    OUTBOX_RELAYED_BATCHES,
    OUTBOX_RELAYED_EVENTS,
    FailureReason,
)

from .batches import (
    ClaimedBatch,
    ClaimedRow,
    RejectedGroup,
    batch_claim,
    batch_release,
    batch_requeue_dead,
    batch_settle,
    relay_health_record_failure,
    relay_health_record_recovery,
)
from .breaker import relay_breaker
from .failures import Blame, error_code, error_text, failure_blame
from .models import OutboxEvent

logger = structlog.get_logger(__name__)


@dataclass
class RelayBatchResult:
    claimed: int = 0
    relayed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    inserts: int = 0
    lag_ms: float | None = None
    duration_ms: float = 0.0
    # The circuit breaker is open: ClickHouse was not called at all.
    backing_off: bool = False
    # Set when the batch failed for an infrastructure reason (it stays owed, unchanged).
    infrastructure_error: str = ""


@dataclass
class RelayDrainResult:
    batches: int = 0
    relayed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    backing_off: bool = False


class InfrastructureFailure(Exception):
    def __init__(self, error: BaseException, *, inserts: int) -> None:
        super().__init__(error_text(error))
        self.inserts = inserts


@dataclass
class _Delivery:
    """What ClickHouse did with a batch: delivered rows and rejected groups."""

    batch: ClaimedBatch
    inserts_left: int
    inserts: int = 0
    delivered: list[ClaimedRow] = field(default_factory=list)
    rejected: list[RejectedGroup] = field(default_factory=list)

    def send(self, rows: Sequence[ClaimedRow], token: str) -> BaseException | None:
        """One insert; None when ClickHouse took it, else the data error it answered."""
        self.inserts += 1
        self.inserts_left -= 1
        try:
            event_log_insert([row.event for row in rows], token=token)
        except Exception as error:
            if failure_blame(error) is Blame.INFRASTRUCTURE:
                raise InfrastructureFailure(error, inserts=self.inserts) from error
            return error
        return None


def _deliver(batch: ClaimedBatch) -> _Delivery:
    delivery = _Delivery(batch, inserts_left=settings.OUTBOX_MAX_INSERTS_PER_BATCH)
    error = delivery.send(batch.rows, batch.token)
    if error is None:
        delivery.delivered = list(batch.rows)
    else:
        # The split is shuffled by the batch and its attempt: a retry after a crash splits
        # exactly as before (so halves ClickHouse already took are dropped by their tokens),
        # while a later attempt splits differently (so rejected rows that fell into both halves
        # once are separated next time).
        shuffle = random.Random(f"{batch.id}:{batch.attempts}")  # noqa: S311 (not security)
        _isolate_rejected(delivery, batch.id, batch.rows, error, shuffle)
    return delivery


def _isolate_rejected(
    delivery: _Delivery,
    group_id: uuid.UUID,
    rows: Sequence[ClaimedRow],
    error: BaseException,
    shuffle: random.Random,
) -> None:
    """`rows`, sent as `group_id`, were rejected with `error`: find the rows to blame by sending
    halves, each under a token derived from its rows (the same halves always get the same one).

    Stops, and rejects the group whole, when it is one row, when the insert budget is spent, or
    when both halves fail with the same error code as the whole: a systemic error (schema drift,
    a new constraint) costs three inserts per batch, not one per row."""
    if len(rows) == 1 or delivery.inserts_left < 2:
        delivery.rejected.append(RejectedGroup(group_id, list(rows), error_text(error)))
        return
    order = list(rows)
    shuffle.shuffle(order)
    middle = len(order) // 2
    halves = [
        sorted(part, key=lambda row: row.outbox_id) for part in (order[:middle], order[middle:])
    ]
    results = []
    for half in halves:
        half_id = uuid.uuid5(group_id, ",".join(str(row.outbox_id) for row in half))
        results.append((half_id, half, delivery.send(half, str(half_id))))
    errors = [half_error for _id, _half, half_error in results if half_error is not None]
    if len(errors) == 2 and error_code(errors[0]) == error_code(errors[1]) == error_code(error):
        delivery.rejected.append(RejectedGroup(group_id, list(rows), error_text(error)))
        return
    for half_id, half, half_error in results:
        if half_error is None:
            delivery.delivered += half
        else:
            _isolate_rejected(delivery, half_id, half, half_error, shuffle)


def outbox_relay_batch(*, batch_size: int | None = None) -> RelayBatchResult:
    """Move up to `batch_size` due events to ClickHouse in one insert; see the module doc."""
    result = RelayBatchResult()
    if not relay_breaker.allows_call():
        result.backing_off = True
        return result
    started = time.monotonic()
    batch = batch_claim(limit=batch_size or settings.OUTBOX_BATCH_SIZE)
    if batch is None:
        return result
    result.claimed = len(batch.rows)
    oldest = min(row.event.event_date_time for row in batch.rows)
    result.lag_ms = (timezone.now() - oldest).total_seconds() * 1000
    with sentry_sdk.start_span(op="outbox.relay_batch", name="outbox_relay_batch") as span:
        try:
            delivery = _deliver(batch)
        except InfrastructureFailure as failure:
            _back_off(batch, failure, result)
            return result
        result.dead_lettered = _settle(batch, delivery)
        span.set_data("relayed", len(delivery.delivered))
    result.inserts = delivery.inserts
    result.relayed = len(delivery.delivered)
    result.failed = sum(len(group.rows) for group in delivery.rejected)
    result.duration_ms = (time.monotonic() - started) * 1000
    _record_settled(result, oldest=oldest, rejected=bool(delivery.rejected))
    if relay_breaker.record_success():
        relay_health_record_recovery()
        logger.info("outbox_relay_recovered")
    if delivery.rejected:
        relay_health_record_failure(
            blame=Blame.DATA.value, error=delivery.rejected[0].error, retry_in_seconds=0
        )
        logger.warning(
            "outbox_batch_rejected",
            batch=batch.token,
            rows=result.failed,
            groups=len(delivery.rejected),
            dead_lettered=result.dead_lettered,
            error=delivery.rejected[0].error,
        )
    logger.info(
        "outbox_batch_relayed",
        count=result.relayed,
        failed=result.failed,
        dead_lettered=result.dead_lettered,
        inserts=result.inserts,
        duration_ms=round(result.duration_ms, 1),
        lag_ms=round(result.lag_ms, 1),
    )
    return result


def _record_settled(result: RelayBatchResult, *, oldest: datetime, rejected: bool) -> None:
    """The metrics of a batch ClickHouse answered (app/core/metrics.py)."""
    OUTBOX_RELAYED_BATCHES.inc()
    OUTBOX_RELAYED_EVENTS.inc(result.relayed)
    OUTBOX_DEAD_LETTERS.inc(result.dead_lettered)
    OUTBOX_BATCH_DURATION.observe(result.duration_ms / 1000)
    OUTBOX_RELAY_LAG.observe((timezone.now() - oldest).total_seconds())
    if rejected:
        OUTBOX_RELAY_FAILURES.labels(reason=FailureReason.REJECTED).inc()


def _settle(batch: ClaimedBatch, delivery: _Delivery) -> int:
    """The step after ClickHouse answered (tests kill a relay exactly here)."""
    return batch_settle(batch, delivered=delivery.delivered, rejected=delivery.rejected)


def _back_off(
    batch: ClaimedBatch, failure: InfrastructureFailure, result: RelayBatchResult
) -> None:
    error = str(failure)
    batch_release(batch, error=error)
    retry_in = relay_breaker.record_failure(error)
    relay_health_record_failure(
        blame=Blame.INFRASTRUCTURE.value, error=error, retry_in_seconds=retry_in
    )
    result.inserts = failure.inserts
    result.infrastructure_error = error
    OUTBOX_RELAY_FAILURES.labels(reason=FailureReason.UNAVAILABLE).inc()
    logger.warning(
        "outbox_relay_backing_off",
        error=error,
        batch=batch.token,
        rows=len(batch.rows),
        retry_in_s=round(retry_in, 2),
    )


def outbox_relay_drain(
    *,
    batch_size: int | None = None,
    time_budget: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RelayDrainResult:
    """Relay batches until nothing is due, the relay backs off, a batch is rejected whole, the
    time budget is spent, or `should_stop()` says so (checked between batches, never inside)."""
    time_budget = settings.OUTBOX_RELAY_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + time_budget
    drained = RelayDrainResult()
    while True:
        if should_stop():
            logger.info("outbox_relay_stopping", batches=drained.batches, relayed=drained.relayed)
            break
        batch = outbox_relay_batch(batch_size=batch_size)
        if batch.backing_off or batch.infrastructure_error:
            drained.backing_off = True
            break
        if batch.claimed == 0:
            break
        drained.batches += 1
        drained.relayed += batch.relayed
        drained.failed += batch.failed
        drained.dead_lettered += batch.dead_lettered
        if batch.relayed == 0 or time.monotonic() >= deadline:
            break
    return drained


def outbox_requeue(
    *,
    event_ids: Sequence[str] = (),
    event_type: str | None = None,
    dead_since: datetime | None = None,
    outbox_ids: Sequence[int] = (),
    all_dead: bool = False,
) -> int:
    """Put dead-lettered rows matching every given filter back in line (attempts reset, due
    now), each with the rest of its batch and under the batch's identity; returns how many.
    Without filters nothing happens unless `all_dead` is set."""
    if not (event_ids or event_type or dead_since or outbox_ids or all_dead):
        return 0
    dead = OutboxEvent.objects.filter(dead_lettered_at__isnull=False)
    if event_ids:
        dead = dead.filter(event_id__in=event_ids)
    if event_type:
        dead = dead.filter(event_type=event_type)
    if dead_since:
        dead = dead.filter(dead_lettered_at__gte=dead_since)
    if outbox_ids:
        dead = dead.filter(id__in=outbox_ids)
    requeued = batch_requeue_dead(list(dead.values_list("id", flat=True)))
    logger.info("outbox_requeued", count=requeued)
    return requeued
