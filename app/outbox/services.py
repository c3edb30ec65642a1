"""The outbox relay, as plain functions: Celery tasks, the management command and tests call
these directly.

One batch = one PostgreSQL transaction: claim due rows with FOR UPDATE SKIP LOCKED, insert
them into ClickHouse in one insert, then delete them (or, on failure, record the attempt) and
commit. The row locks are held until the commit, so concurrent relays never claim the same
row, and a relay killed at any point loses nothing: its locks die with its connection.
"""

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sentry_sdk
import structlog
from clickhouse_connect.driver.exceptions import DatabaseError as ClickHouseDatabaseError
from clickhouse_connect.driver.exceptions import OperationalError as ClickHouseUnreachable
from django.conf import settings
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast, Now
from django.utils import timezone

from app.clickhouse.event_log import EventLogRow, event_log_insert

from .models import OutboxEvent

logger = structlog.get_logger(__name__)

_MAX_ERROR_LENGTH = 2000
# ClickHouse error codes that blame the inserted data rather than the server: a batch failing
# with one of them is split to find the poison rows. Any other error fails the whole batch.
_DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        469,  # VIOLATED_CONSTRAINT
    }
)
_CLICKHOUSE_ERROR_CODE = re.compile(r"Code: (\d+)\.")

# A claimed row: the event as ClickHouse stores it, and the id of its outbox row.
_ClaimedRow = tuple[EventLogRow, int]


@dataclass
class RelayBatchResult:
    claimed: int = 0
    relayed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    inserts: int = 0
    lag_ms: float | None = None
    duration_ms: float = 0.0


@dataclass
class RelayDrainResult:
    batches: int = 0
    relayed: int = 0
    failed: int = 0
    dead_lettered: int = 0


def outbox_relay_batch(*, batch_size: int | None = None) -> RelayBatchResult:
    """Move up to `batch_size` due events to ClickHouse in one insert; see the module doc."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    started = time.monotonic()
    result = RelayBatchResult()
    with (
        sentry_sdk.start_span(op="outbox.relay_batch", name="outbox_relay_batch") as span,
        transaction.atomic(),
    ):
        rows = _claim_due_rows(batch_size)
        result.claimed = len(rows)
        if not rows:
            return result
        result.lag_ms = (
            timezone.now() - min(row[0].event_date_time for row in rows)
        ).total_seconds() * 1000

        delivered, failures, result.inserts = _insert_isolating_poison(rows)
        if delivered:
            _delete_relayed([outbox_id for _row, outbox_id in delivered])
        for error, failed_rows in failures:
            result.dead_lettered += _record_failed_attempt(
                [outbox_id for _row, outbox_id in failed_rows], error
            )
        result.relayed = len(delivered)
        result.failed = sum(len(failed_rows) for _error, failed_rows in failures)
        span.set_data("relayed", result.relayed)
        span.set_data("failed", result.failed)

    result.duration_ms = (time.monotonic() - started) * 1000
    log = logger.warning if result.failed else logger.info
    log(
        "outbox_batch_relayed",
        count=result.relayed,
        failed=result.failed,
        dead_lettered=result.dead_lettered,
        inserts=result.inserts,
        duration_ms=round(result.duration_ms, 1),
        lag_ms=round(result.lag_ms, 1),
    )
    return result


def outbox_relay_drain(
    *,
    batch_size: int | None = None,
    time_budget: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RelayDrainResult:
    """Relay batches until nothing is due, a batch fails entirely, the time budget is spent,
    or `should_stop()` says so (checked between batches, never inside one)."""
    time_budget = settings.OUTBOX_RELAY_TIME_BUDGET if time_budget is None else time_budget
    deadline = time.monotonic() + time_budget
    drained = RelayDrainResult()
    while True:
        if should_stop():
            logger.info("outbox_relay_stopping", batches=drained.batches, relayed=drained.relayed)
            break
        batch = outbox_relay_batch(batch_size=batch_size)
        if batch.claimed == 0:
            break
        drained.batches += 1
        drained.relayed += batch.relayed
        drained.failed += batch.failed
        drained.dead_lettered += batch.dead_lettered
        # Nothing went through: ClickHouse is down or every due row is poison. Leave the rest
        # to their backoff instead of hammering ClickHouse.
        if batch.relayed == 0 or time.monotonic() >= deadline:
            break
    return drained


def _claim_due_rows(batch_size: int) -> list[_ClaimedRow]:
    """Lock the oldest due rows; rows locked by another relay are skipped, not waited for."""
    claimed = (
        OutboxEvent.objects.select_for_update(skip_locked=True)
        .filter(dead_lettered_at__isnull=True, next_attempt_at__lte=Now())
        .order_by("next_attempt_at", "id")
        # The payload as PostgreSQL's JSON text: no decode and re-encode in Python.
        .annotate(payload_text=Cast("payload", output_field=TextField()))
        .values_list(
            "event_id", "event_type", "occurred_at", "payload_text", "metadata_version", "id"
        )[:batch_size]
    )
    environment = settings.ENVIRONMENT_NAME
    return [
        (
            EventLogRow(event_id, event_type, occurred_at, environment, payload, version),
            outbox_id,
        )
        for event_id, event_type, occurred_at, payload, version, outbox_id in claimed
    ]


def _insert_isolating_poison(
    rows: Sequence[_ClaimedRow],
) -> tuple[list[_ClaimedRow], list[tuple[Exception, list[_ClaimedRow]]], int]:
    """Insert `rows` in one insert. If ClickHouse rejects the data, split the batch in halves
    (recursively) so the good rows still go through and only the poison rows fail.

    Returns (delivered rows, [(error, failed rows)], number of inserts made).
    """
    try:
        event_log_insert([row for row, _outbox_id in rows])
    except ClickHouseUnreachable as error:
        return [], [(error, list(rows))], 1
    except Exception as error:
        if len(rows) == 1 or not _blames_the_data(error):
            return [], [(error, list(rows))], 1
        middle = len(rows) // 2
        delivered, failures, inserts = [], [], 1
        for half in (rows[:middle], rows[middle:]):
            half_delivered, half_failures, half_inserts = _insert_isolating_poison(half)
            delivered += half_delivered
            failures += half_failures
            inserts += half_inserts
        return delivered, failures, inserts
    return list(rows), [], 1


def _blames_the_data(error: Exception) -> bool:
    if isinstance(error, ClickHouseDatabaseError):
        match = _CLICKHOUSE_ERROR_CODE.search(str(error))
        return match is not None and int(match.group(1)) in _DATA_ERROR_CODES
    # Raised while serialising rows on our side (a value the column type cannot hold).
    return isinstance(error, ValueError | TypeError | OverflowError)


def _delete_relayed(outbox_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM outbox_event WHERE id = ANY(%s)", [outbox_ids])


def _record_failed_attempt(outbox_ids: list[int], error: Exception) -> int:
    """Count the attempt and push the next one back (exponential backoff with jitter);
    dead-letter rows that used up OUTBOX_MAX_ATTEMPTS. Returns how many were dead-lettered."""
    message = f"{type(error).__name__}: {error}"[:_MAX_ERROR_LENGTH]
    # clock_timestamp(), not now(): now() is when the transaction began, possibly long ago.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE outbox_event SET
                attempts = attempts + 1,
                last_error = %(error)s,
                next_attempt_at = clock_timestamp() + make_interval(
                    secs => least(%(base)s * power(2, attempts), %(cap)s) * (0.5 + random() / 2)
                ),
                dead_lettered_at =
                    CASE WHEN attempts + 1 >= %(max_attempts)s THEN clock_timestamp() END
            WHERE id = ANY(%(ids)s)
            RETURNING dead_lettered_at IS NOT NULL
            """,
            {
                "error": message,
                "base": settings.OUTBOX_BACKOFF_BASE,
                "cap": settings.OUTBOX_BACKOFF_MAX,
                "max_attempts": settings.OUTBOX_MAX_ATTEMPTS,
                "ids": outbox_ids,
            },
        )
        dead_lettered = sum(1 for (is_dead,) in cursor.fetchall() if is_dead)
    logger.warning(
        "outbox_relay_failed",
        error=message,
        count=len(outbox_ids),
        dead_lettered=dead_lettered,
    )
    return dead_lettered


def outbox_requeue(
    *,
    event_ids: Sequence[str] = (),
    event_type: str | None = None,
    dead_since: datetime | None = None,
    outbox_ids: Sequence[int] = (),
    all_dead: bool = False,
) -> int:
    """Put dead-lettered rows matching every given filter back in line (attempts reset, due
    now); returns how many. Without filters nothing happens unless `all_dead` is set."""
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
    requeued = dead.update(dead_lettered_at=None, attempts=0, next_attempt_at=Now())
    logger.info("outbox_requeued", count=requeued)
    return requeued
