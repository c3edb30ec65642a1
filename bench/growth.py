"""4. Growth: the relay's claim (app.outbox.batches.batch_claim: the statement that locks the
due rows, sets their batch and registers the batch, and the rows it builds) timed against a
growing backlog, and its query plan.

Each claim locks the same number of rows (`batch_size`, at most the smallest backlog) so the
levels differ only in what surrounds those rows, and runs in a transaction that is rolled back,
so the backlog stays as it is. EXPLAIN (ANALYZE, BUFFERS) of the same statement shows which index
the planner takes and how many pages one claim touches.

Relayed rows are deleted, and a deleted row stays in the index until VACUUM removes it. The
first scan that meets such entries marks them dead in the index, so later claims skip them;
but only once no transaction anywhere in the PostgreSQL cluster is older than the deletes (a
snapshot's horizon spans every database). Two extra levels show both sides: a fresh backlog
right after a large drain, and the same while another transaction stays open.
"""

import re
import time
from collections.abc import Callable

import psycopg
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from app.outbox.batches import batch_claim

from .harness import summarize_ms
from .workload import OutboxFiller, outbox_truncate, outbox_vacuum

DUE_INDEX = "outbox_event_due_idx"
_EXECUTION_TIME = re.compile(r"Execution Time: ([\d.]+) ms")
_SHARED_BUFFERS = re.compile(r"Buffers: shared hit=(\d+)(?: read=(\d+))?")


def claim_times(batch_size: int, repeats: int) -> tuple[list[float], int]:
    """Durations of `repeats` claims, and the rows each one locked."""
    durations = []
    claimed = 0
    for _ in range(repeats):
        with transaction.atomic():
            started = time.perf_counter()
            batch = batch_claim(limit=batch_size)
            claimed = len(batch.rows) if batch else 0
            durations.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return durations, claimed


def claim_plan(batch_size: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim statement exactly as the relay sends it."""
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        batch_claim(limit=batch_size)
        transaction.set_rollback(True)
    # The statement that claims new rows (the one before it looks for expired batches).
    statement = next(
        q["sql"]
        for q in queries.captured_queries
        if "FOR UPDATE" in q["sql"] and "outbox_event" in q["sql"]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def _table_state() -> dict:
    """Dead tuples in outbox_event, and the age of the oldest transaction open elsewhere in the
    cluster (other sessions, other databases too: any of them holds the cleanup back)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'outbox_event'")
        dead_tuples = cursor.fetchone()[0]
        cursor.execute(
            """
            SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
            FROM pg_stat_activity
            WHERE pid <> pg_backend_pid()
              AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
            """
        )
        oldest = float(cursor.fetchone()[0])
    return {"dead_tuples": dead_tuples, "oldest_other_transaction_s": round(oldest, 1)}


def measure_level(name: str, *, pending: int, dead: int, batch_size: int, repeats: int) -> dict:
    state = _table_state()
    durations, claimed = claim_times(batch_size, repeats)
    # The plan after the timed claims: the first claim may have had dead entries to mark.
    plan = claim_plan(batch_size)
    execution = _EXECUTION_TIME.search(plan)
    buffers = _SHARED_BUFFERS.search(plan)
    return {
        "level": name,
        "pending": pending,
        "dead_lettered": dead,
        **state,
        "claimed": claimed,
        "first_ms": round(durations[0] * 1000, 3),
        **summarize_ms(durations),
        "plan_execution_ms": float(execution.group(1)) if execution else None,
        "plan_shared_buffers": (
            int(buffers.group(1)) + int(buffers.group(2) or 0) if buffers else None
        ),
        "uses_due_index": DUE_INDEX in plan,
        "plan": plan,
    }


def _with_open_transaction(
    database_dsn: str, filler: OutboxFiller, *, relayed: int, pending: int, **measure
) -> list[dict]:
    """`relayed` rows deleted while another session keeps a transaction open, then `pending`
    fresh rows claimed: before and after that transaction ends."""
    outbox_truncate()
    filler.pending(relayed)
    outbox_vacuum()
    results = []
    with psycopg.connect(database_dsn) as other:
        other.execute("SELECT txid_current()")  # an open transaction with an id
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM outbox_event")
        filler.pending(pending)
        results.append(
            measure_level(
                f"{pending:,} pending, {relayed:,} just relayed, another transaction open",
                pending=pending,
                dead=0,
                **measure,
            )
        )
        other.rollback()
    results.append(
        measure_level(
            f"{pending:,} pending, {relayed:,} just relayed, that transaction ended",
            pending=pending,
            dead=0,
            **measure,
        )
    )
    return results


def bench_growth(
    *,
    database_dsn: str,
    levels: list[int],
    dead: int,
    batch_size: int,
    repeats: int,
    step: Callable[[str], None],
    after_largest: Callable[[OutboxFiller], object] | None = None,
) -> dict:
    """Claim time with `levels` pending rows (each level filled on top of the last), then with
    `dead` dead-lettered rows beside the smallest level, then the two deleted-rows levels.

    `after_largest`, if given, runs once the largest level is measured (the footprint drain
    empties the outbox there); the claim is then measured on a fresh small backlog right after
    that drain, before and after VACUUM.
    """
    measure = {"batch_size": batch_size, "repeats": repeats}
    filler = OutboxFiller()
    results = []
    outbox_truncate()
    filled = 0
    for level in levels:
        step(f"growth: {level:,} pending rows")
        filler.pending(level - filled)
        filled = level
        outbox_vacuum()
        results.append(measure_level(f"{level:,} pending", pending=level, dead=0, **measure))

    smallest, largest = levels[0], levels[-1]
    if after_largest is not None:
        drained = after_largest(filler)
        step(f"growth: {smallest:,} pending right after the drain")
        filler.pending(smallest)
        label = f"{smallest:,} pending, {drained:,} just relayed"
        results.append(
            measure_level(f"{label} (before VACUUM)", pending=smallest, dead=0, **measure)
        )
        outbox_vacuum()
        results.append(
            measure_level(f"{label} (after VACUUM)", pending=smallest, dead=0, **measure)
        )

    step(f"growth: {smallest:,} pending beside {dead:,} dead-lettered rows")
    outbox_truncate()
    filler.dead(dead)
    filler.pending(smallest)
    outbox_vacuum()
    dead_level = measure_level(
        f"{smallest:,} pending + {dead:,} dead-lettered", pending=smallest, dead=dead, **measure
    )
    results.append(dead_level)

    step(f"growth: {largest:,} rows relayed while another transaction is open")
    results += _with_open_transaction(
        database_dsn, filler, relayed=largest, pending=smallest, **measure
    )
    outbox_truncate()

    baseline, baseline_p99 = results[0]["p50_ms"], results[0]["p99_ms"]
    for result in results:
        result["p50_over_smallest"] = round(result["p50_ms"] / baseline, 2)
        result["p99_over_smallest"] = round(result["p99_ms"] / baseline_p99, 2)
    backlog = [*results[: len(levels)], dead_level]
    return {
        "batch_size": batch_size,
        "repeats": repeats,
        "levels": results,
        "largest_backlog": results[len(levels) - 1]["level"],
        "backlog_levels_use_due_index": {r["level"]: r["uses_due_index"] for r in backlog},
        "worst_backlog_p50_over_smallest": max(r["p50_over_smallest"] for r in backlog),
        "worst_backlog_p99_over_smallest": max(r["p99_over_smallest"] for r in backlog),
    }
