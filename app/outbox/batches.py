"""The relay's PostgreSQL side: batches claimed, taken over and settled in short transactions.

A batch is an `OutboxBatch` row committed *before* its insert is sent, naming its rows and the
deduplication token they are sent under (its id). The insert happens with no transaction open;
a second short transaction then deletes the delivered rows (or records what ClickHouse
rejected). Whatever happens in between — the relay is killed, hangs, or never hears ClickHouse's
reply — the batch stays until its lease runs out, and the next relay to take it over sends the
same rows under the same token: ClickHouse drops them if it already has them.

Claiming new rows skips rows that belong to a batch (`batch_id` is set) without an index on
it, so setting it is a heap-only update (see the table's fillfactor).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from app.clickhouse.event_log import EventLogRow

from .models import OutboxBatch, OutboxEvent, OutboxRelayHealth

EVENTS = OutboxEvent._meta.db_table
BATCHES = OutboxBatch._meta.db_table
HEALTH = OutboxRelayHealth._meta.db_table
# The columns a relayed row needs, in EventLogRow's order (the payload as PostgreSQL's JSON
# text: no decode and re-encode in Python).
_ROW_COLUMNS = (
    "{t}id, {t}event_id, {t}event_type, {t}occurred_at, {t}payload::text, {t}metadata_version"
)


def _row_columns(table: str = "") -> str:
    """The relayed columns, qualified by `table` where a query names several."""
    return _ROW_COLUMNS.format(t=f"{table}." if table else "")


@dataclass(frozen=True)
class ClaimedRow:
    outbox_id: int
    event: EventLogRow


@dataclass(frozen=True)
class ClaimedBatch:
    id: uuid.UUID
    # Rejected attempts so far (0 for a new batch).
    attempts: int
    # Ascending by outbox id: the order the rows are always sent in.
    rows: list[ClaimedRow]

    @property
    def token(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class RejectedGroup:
    """Rows sent together (as `id`) whose data ClickHouse refused with `error`."""

    id: uuid.UUID
    rows: list[ClaimedRow]
    error: str


def _claimed_rows(records: Sequence[tuple[Any, ...]]) -> list[ClaimedRow]:
    environment = settings.ENVIRONMENT_NAME
    return [
        ClaimedRow(
            outbox_id,
            EventLogRow(event_id, event_type, occurred_at, environment, payload, version),
        )
        for outbox_id, event_id, event_type, occurred_at, payload, version in records
    ]


def batch_claim(*, limit: int) -> ClaimedBatch | None:
    """The next batch this relay owns for OUTBOX_LEASE_SECONDS: a batch whose lease ran out
    (taken over whole, so it is re-sent exactly), else up to `limit` new rows, oldest first."""
    return _batch_take_over() or _batch_claim_new(limit)


def _batch_take_over() -> ClaimedBatch | None:
    while True:
        with connection.cursor() as cursor:
            # One relay at a time per batch: the row lock decides, and the new lease commits
            # before anyone else can see the batch again.
            cursor.execute(
                f"""
                UPDATE {BATCHES}
                SET leased_until = clock_timestamp() + make_interval(secs => %(lease)s)
                WHERE id = (
                    SELECT id FROM {BATCHES} WHERE leased_until <= clock_timestamp()
                    ORDER BY leased_until LIMIT 1 FOR UPDATE SKIP LOCKED
                )
                RETURNING id, outbox_ids, attempts
                """,  # noqa: S608 (table names from the models)
                {"lease": settings.OUTBOX_LEASE_SECONDS},
            )
            taken = cursor.fetchone()
            if taken is None:
                return None
            batch_id, outbox_ids, attempts = taken
            cursor.execute(
                f"SELECT {_row_columns()} FROM {EVENTS} "  # noqa: S608
                "WHERE id = ANY(%s) AND dead_lettered_at IS NULL ORDER BY id",
                [outbox_ids],
            )
            rows = _claimed_rows(cursor.fetchall())
            if rows:
                return ClaimedBatch(batch_id, attempts, rows)
            # Nothing left of it (its dead letters were deleted): forget it, look further.
            cursor.execute(f"DELETE FROM {BATCHES} WHERE id = %s", [batch_id])  # noqa: S608


def _batch_claim_new(limit: int) -> ClaimedBatch | None:
    batch_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH claimed AS (
                SELECT id FROM {EVENTS}
                WHERE dead_lettered_at IS NULL AND batch_id IS NULL
                  -- statement_timestamp(), not clock_timestamp(): a stable value can bound
                  -- the index scan (outbox_event_due_idx); a volatile one made the planner
                  -- scan the table. Not now(): rows published earlier in the same
                  -- transaction carry their statement's time (Django's Now()).
                  AND next_attempt_at <= statement_timestamp()
                ORDER BY next_attempt_at, id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), leased AS (
                UPDATE {EVENTS} SET batch_id = %(batch)s
                FROM claimed WHERE {EVENTS}.id = claimed.id
                RETURNING {_row_columns(EVENTS)}
            ), registered AS (
                INSERT INTO {BATCHES} (id, outbox_ids, leased_until, attempts, last_error)
                SELECT %(batch)s, array_agg(id ORDER BY id),
                       clock_timestamp() + make_interval(secs => %(lease)s), 0, ''
                FROM leased HAVING count(*) > 0
            )
            SELECT * FROM leased ORDER BY id
            """,  # noqa: S608
            {"limit": limit, "batch": batch_id, "lease": settings.OUTBOX_LEASE_SECONDS},
        )
        rows = _claimed_rows(cursor.fetchall())
    return ClaimedBatch(batch_id, 0, rows) if rows else None


def batch_settle(
    batch: ClaimedBatch, *, delivered: Sequence[ClaimedRow], rejected: Sequence[RejectedGroup]
) -> int:
    """Record what ClickHouse did with `batch`, in one short transaction: delete the delivered
    rows; give each rejected group a retry after backoff, or dead-letter its rows once the
    batch has used up OUTBOX_MAX_ATTEMPTS. Returns how many rows were dead-lettered."""
    attempts = batch.attempts + 1
    dead_lettered = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if delivered:
            cursor.execute(
                f"DELETE FROM {EVENTS} WHERE id = ANY(%s)",  # noqa: S608
                [[row.outbox_id for row in delivered]],
            )
        cursor.execute(f"DELETE FROM {BATCHES} WHERE id = %s", [batch.id])  # noqa: S608
        for group in rejected:
            ids = [row.outbox_id for row in group.rows]
            dead = attempts >= settings.OUTBOX_MAX_ATTEMPTS
            if not dead:
                cursor.execute(
                    f"""
                    INSERT INTO {BATCHES} (id, outbox_ids, leased_until, attempts, last_error)
                    VALUES (%(id)s, %(ids)s, clock_timestamp() + make_interval(
                        secs => least(%(base)s * power(2, %(attempts)s - 1), %(cap)s)
                                * (0.5 + random() / 2)
                    ), %(attempts)s, %(error)s)
                    """,  # noqa: S608
                    {
                        "id": group.id,
                        "ids": ids,
                        "base": settings.OUTBOX_BACKOFF_BASE,
                        "cap": settings.OUTBOX_BACKOFF_MAX,
                        "attempts": attempts,
                        "error": group.error,
                    },
                )
            cursor.execute(
                f"""
                UPDATE {EVENTS} SET batch_id = %(id)s, attempts = %(attempts)s,
                    last_error = %(error)s,
                    dead_lettered_at = CASE WHEN %(dead)s THEN clock_timestamp() END
                WHERE id = ANY(%(ids)s)
                """,  # noqa: S608
                {
                    "id": group.id,
                    "attempts": attempts,
                    "error": group.error,
                    "dead": dead,
                    "ids": ids,
                },
            )
            dead_lettered += len(ids) if dead else 0
    return dead_lettered


def batch_release(batch: ClaimedBatch, *, error: str) -> None:
    """After an infrastructure failure: the batch keeps its rows, its identity and its place
    in line, and any relay whose circuit breaker lets it may retry it at once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {BATCHES} SET leased_until = clock_timestamp(), last_error = %s "  # noqa: S608
            "WHERE id = %s",
            [error, batch.id],
        )


def relay_health_record_failure(*, blame: str, error: str, retry_in_seconds: float) -> None:
    """What operators see in `outbox_status` and /healthz/status: the latest failure."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {HEALTH} AS health (id, breaker_open_until, consecutive_failures,
                last_failure_at, last_failure, last_failure_blame)
            VALUES (1, CASE WHEN %(infrastructure)s
                         THEN clock_timestamp() + make_interval(secs => %(retry)s) END,
                    CASE WHEN %(infrastructure)s THEN 1 ELSE 0 END,
                    clock_timestamp(), %(error)s, %(blame)s)
            ON CONFLICT (id) DO UPDATE SET
                breaker_open_until = EXCLUDED.breaker_open_until,
                consecutive_failures = CASE WHEN %(infrastructure)s
                    THEN health.consecutive_failures + 1 ELSE health.consecutive_failures END,
                last_failure_at = EXCLUDED.last_failure_at,
                last_failure = EXCLUDED.last_failure,
                last_failure_blame = EXCLUDED.last_failure_blame
            """,  # noqa: S608
            {
                "infrastructure": blame == "infrastructure",
                "retry": retry_in_seconds,
                "error": error,
                "blame": blame,
            },
        )


def relay_health_record_recovery() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {HEALTH} AS health (id, consecutive_failures, recovered_at)
            VALUES (1, 0, clock_timestamp())
            ON CONFLICT (id) DO UPDATE SET breaker_open_until = NULL, consecutive_failures = 0,
                recovered_at = EXCLUDED.recovered_at
            """  # noqa: S608
        )


def batch_requeue_dead(dead_outbox_ids: Sequence[int]) -> int:
    """Put the dead-lettered rows `dead_outbox_ids` back in line, each with every other dead
    row of its batch, under the batch's identity (so a batch ClickHouse did store is dropped
    as the duplicate it is); returns how many rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH groups AS (
                SELECT DISTINCT batch_id FROM {EVENTS}
                WHERE id = ANY(%(ids)s) AND dead_lettered_at IS NOT NULL
            ), requeued AS (
                UPDATE {EVENTS} SET dead_lettered_at = NULL, attempts = 0
                WHERE dead_lettered_at IS NOT NULL AND (
                    batch_id IN (SELECT batch_id FROM groups)
                    OR (batch_id IS NULL AND id = ANY(%(ids)s))
                )
                RETURNING id, batch_id
            ), batches AS (
                INSERT INTO {BATCHES} (id, outbox_ids, leased_until, attempts, last_error)
                SELECT batch_id, array_agg(id ORDER BY id), clock_timestamp(), 0, ''
                FROM requeued WHERE batch_id IS NOT NULL GROUP BY batch_id
                ON CONFLICT (id) DO UPDATE SET outbox_ids = EXCLUDED.outbox_ids,
                    leased_until = EXCLUDED.leased_until, attempts = 0
            )
            SELECT count(*) FROM requeued
            """,  # noqa: S608
            {"ids": list(dead_outbox_ids)},
        )
        (requeued,) = cursor.fetchone()
    return int(requeued)
