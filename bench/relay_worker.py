"""One relay process of the throughput benchmark: `python -m bench.relay_worker MODE ...`.

It sets Django up, opens its PostgreSQL connection and its ClickHouse client, prints `ready`,
waits for a line on stdin (so that every process of a run starts together, start-up excluded),
moves rows, and prints one JSON line: {"moved", "batches", "started", "finished"} (wall-clock
seconds, comparable across processes).

Modes:
  relay   app.outbox.services.outbox_relay_drain: the product.
  limit   the tightest hand-written path: one bulk claim-and-delete statement per batch and one
          ClickHouse insert of the same rows through the same client (event_log_insert).
  naive   one ClickHouse insert per event, as the seed did: `--sample` rows read from the outbox
          before the clock starts (not claimed, not deleted), then each inserted on its own.
"""

import argparse
import json
import os
import sys
import time

import django

NAIVE_WARMUP = 20
_CLAIM_AND_DELETE = """
DELETE FROM outbox_event
WHERE id IN (
    SELECT id FROM outbox_event
    WHERE dead_lettered_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT %s
)
RETURNING event_id, event_type, occurred_at, payload::text, metadata_version
"""


def _relay(batch_size: int) -> tuple[int, int]:
    from app.outbox.services import outbox_relay_drain

    drained = outbox_relay_drain(batch_size=batch_size, time_budget=3600)
    return drained.relayed, drained.batches


def _limit(batch_size: int) -> tuple[int, int]:
    from django.conf import settings
    from django.db import connection, transaction

    from app.clickhouse.event_log import EventLogRow, event_log_insert

    environment = settings.ENVIRONMENT_NAME
    moved = batches = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM_AND_DELETE, [batch_size])
            rows = [
                EventLogRow(event_id, event_type, occurred_at, environment, payload, version)
                for event_id, event_type, occurred_at, payload, version in cursor.fetchall()
            ]
            if not rows:
                return moved, batches
            event_log_insert(rows)
        moved += len(rows)
        batches += 1


def _naive_rows(sample: int) -> list:
    from django.conf import settings
    from django.db import connection

    from app.clickhouse.event_log import EventLogRow

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, event_type, occurred_at, payload::text, metadata_version"
            " FROM outbox_event ORDER BY id LIMIT %s",
            [sample],
        )
        return [
            EventLogRow(event_id, event_type, occurred_at, settings.ENVIRONMENT_NAME, payload, v)
            for event_id, event_type, occurred_at, payload, v in cursor.fetchall()
        ]


def _naive(rows: list) -> tuple[int, int]:
    from app.clickhouse.event_log import event_log_insert

    for row in rows:
        event_log_insert([row])
    return len(rows), len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["relay", "limit", "naive"])
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; everything else written there (the app's logs) goes
    # to stderr, the log file.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    django.setup()
    from django.db import connection

    from app.clickhouse.client import clickhouse_client

    connection.ensure_connection()
    clickhouse_client().ping()
    # The naive sample is read before the clock starts, and a few warm-up inserts go first:
    # only the steady inserts are timed.
    sample = _naive_rows(args.sample + NAIVE_WARMUP) if args.mode == "naive" else []
    if sample:
        _naive(sample[:NAIVE_WARMUP])
        sample = sample[NAIVE_WARMUP:]
    protocol.write("ready\n")
    protocol.flush()
    sys.stdin.readline()

    started = time.time()
    if args.mode == "relay":
        moved, batches = _relay(args.batch_size)
    elif args.mode == "limit":
        moved, batches = _limit(args.batch_size)
    else:
        moved, batches = _naive(sample)
    finished = time.time()
    result = {"moved": moved, "batches": batches, "started": started, "finished": finished}
    protocol.write(json.dumps(result) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
