"""One relay process of the throughput benchmark: `python -m bench.relay_worker MODE ...`.

It sets Django up, opens its PostgreSQL connection and its ClickHouse client, sends one
warm-up insert (not for `naive`, whose warm-up is its first inserts), prints `ready`, waits
for `go` on stdin (so that every process of a run starts together, start-up excluded), moves
rows, and prints one JSON line: {"moved", "batches", "started", "finished", "batch_seconds",
"cpu_s", "backend_cpu_s", "received"} (wall-clock seconds, comparable across processes;
`batch_seconds` holds the duration of each batch, or of each insert for `naive`; the CPU
seconds of this process and of its PostgreSQL backend; `received` is what the destination
holds afterwards, counted by this process when nobody else can see it). The same process
serves the next `go` once the caller has refilled the outbox, so later runs pay no start-up
either.

Modes against the shared ClickHouse (CLICKHOUSE_URL: the development HTTP front):
  relay   app.outbox.services.outbox_relay_drain: the product.
  limit   the tightest hand-written path: one bulk claim-and-delete statement per batch and one
          ClickHouse insert of the same rows through the same client (event_log_insert), in
          the same transaction.
  naive   one ClickHouse insert per event, as the seed did: `--sample` rows read from the outbox
          before the clock starts (not claimed, not deleted), then each inserted on its own.

Modes in one process, no HTTP front (the caller gives each process its own CLICKHOUSE_URL =
chdb://<fresh directory>; the process migrates that schema itself):
  relay-inprocess   `relay` against the embedded engine inside this process;
  limit-inprocess   `limit` against the same;
  relay-sink        `relay` with event_log_insert replaced by a function that keeps the rows and
                    sends nothing: the relay's own ceiling, PostgreSQL and Python only;
  limit-sink        `limit` with the same sink: the ceiling of the tightest path.
"""

import argparse
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import django

NAIVE_WARMUP = 20
MODES = (
    "relay",
    "limit",
    "naive",
    "relay-inprocess",
    "limit-inprocess",
    "relay-sink",
    "limit-sink",
)
IN_PROCESS_MODES = ("relay-inprocess", "limit-inprocess", "relay-sink", "limit-sink")
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

Insert = Callable[..., None]


class Sink:
    """Stands in for event_log_insert: takes the rows and the token, sends nothing. It keeps a
    reference to each batch (no per-row work inside the timed drain) so that the rows and the
    distinct event ids can be counted afterwards."""

    def __init__(self) -> None:
        self.batches: list[Sequence] = []

    def __call__(self, rows: Sequence, *, token: str) -> None:
        self.batches.append(rows)

    def received(self) -> dict[str, int]:
        ids = [row.event_id for rows in self.batches for row in rows]
        return {"rows": len(ids), "distinct": len(set(ids))}


def _relay(batch_size: int) -> tuple[int, int, list[float]]:
    """The product's drain; a batch's time runs from one `should_stop()` check (made before
    every batch) to the next, so it includes everything the drain loop does per batch."""
    from app.outbox.services import outbox_relay_drain

    marks: list[float] = []

    def mark() -> bool:
        marks.append(time.perf_counter())
        return False

    drained = outbox_relay_drain(batch_size=batch_size, time_budget=3600, should_stop=mark)
    batch_seconds = [later - earlier for earlier, later in itertools.pairwise(marks)]
    return drained.relayed, drained.batches, batch_seconds[: drained.batches]


def _limit(batch_size: int, insert: Insert) -> tuple[int, int, list[float]]:
    from django.conf import settings
    from django.db import connection, transaction

    from app.clickhouse.event_log import EventLogRow

    environment = settings.ENVIRONMENT_NAME
    moved = batches = 0
    batch_seconds = []
    while True:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM_AND_DELETE, [batch_size])
            rows = [
                EventLogRow(event_id, event_type, occurred_at, environment, payload, version)
                for event_id, event_type, occurred_at, payload, version in cursor.fetchall()
            ]
            if not rows:
                return moved, batches, batch_seconds
            insert(rows, token=str(uuid.uuid4()))
        batch_seconds.append(time.perf_counter() - started)
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


def _naive(rows: list) -> tuple[int, int, list[float]]:
    from app.clickhouse.event_log import event_log_insert

    insert_seconds = []
    for row in rows:
        started = time.perf_counter()
        event_log_insert([row], token=str(row.event_id))
        insert_seconds.append(time.perf_counter() - started)
    return len(rows), len(rows), insert_seconds


def _warm_up_insert() -> None:
    """One insert of a throw-away row, so that the first timed batch does not pay for the
    client's first insert (clickhouse-connect imports its column libraries then) nor the
    engine's: every mode gets the same. Whoever owns the table empties it before the start."""
    from django.utils import timezone

    from app.clickhouse.event_log import EventLogRow, event_log_insert

    row = EventLogRow(uuid.uuid4(), "bench_warm_up", timezone.now(), "bench", "{}", 1)
    event_log_insert([row], token=str(uuid.uuid4()))


def _engine_prepare() -> None:
    """This process's own embedded engine: the schema, a warm-up insert, an empty table."""
    from app.clickhouse.schema import clickhouse_migrate

    clickhouse_migrate()
    _warm_up_insert()
    _engine_empty()


def _engine_empty() -> None:
    from app.clickhouse.client import clickhouse_client
    from app.clickhouse.event_log import event_log_table

    clickhouse_client().command(f"TRUNCATE TABLE {event_log_table()}")


def _engine_received() -> dict[str, int]:
    from app.clickhouse.client import clickhouse_client
    from app.clickhouse.event_log import event_log_table

    rows, distinct = (
        clickhouse_client()
        .query(f"SELECT count(), uniqExact(event_id) FROM {event_log_table()}")
        .first_row
    )
    return {"rows": int(rows), "distinct": int(distinct)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=1000)
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; everything else written there (the app's logs) goes
    # to stderr, the log file.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    django.setup()
    from django.conf import settings
    from django.db import connection

    if args.mode in IN_PROCESS_MODES:
        # Started with DEBUG=true, which the settings require for a chdb:// URL; nothing the
        # relay does depends on DEBUG but Django's query log, which would record every
        # statement's text (the settle's 5,000 ids among them): off, as in production.
        settings.DEBUG = False

    from app.clickhouse.client import clickhouse_client
    from app.clickhouse.event_log import event_log_insert

    connection.ensure_connection()
    sink = Sink() if args.mode.endswith("-sink") else None
    if sink is not None:
        # The relay looks the function up in its module at every batch.
        import app.outbox.services

        app.outbox.services.event_log_insert = sink
    elif args.mode.endswith("-inprocess"):
        _engine_prepare()
    else:
        clickhouse_client().ping()
        if args.mode != "naive":
            # The caller empties the shared table once every process is ready.
            _warm_up_insert()
    # The naive sample is read before the clock starts, and a few warm-up inserts go first:
    # only the steady inserts are timed.
    sample = _naive_rows(args.sample + NAIVE_WARMUP) if args.mode == "naive" else []
    if sample:
        _naive(sample[:NAIVE_WARMUP])
        sample = sample[NAIVE_WARMUP:]
    # `ready` once; then every run: a line on stdin (`go`; anything else ends the process),
    # the run, the destination emptied for the next one (which the caller refills the outbox
    # for), and the run's result. `naive` runs once (its sample is read before `ready`).
    protocol.write("ready\n")
    protocol.flush()
    while True:
        if sys.stdin.readline().strip() != "go":
            return
        result = _run(args, sample, sink or event_log_insert)
        if sink is not None:
            result["received"] = sink.received()
            sink.batches.clear()
        elif args.mode in IN_PROCESS_MODES:
            result["received"] = _engine_received()
            _engine_empty()
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()
        if args.mode == "naive":
            return


def _run(args: argparse.Namespace, sample: list, insert: Insert) -> dict:
    from django.db import connection

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    cpu_before, backend_before = _cpu_seconds(), backend_cpu_seconds(backend)
    started = time.time()
    if args.mode.startswith("relay"):
        moved, batches, batch_seconds = _relay(args.batch_size)
    elif args.mode.startswith("limit"):
        moved, batches, batch_seconds = _limit(args.batch_size, insert)
    else:
        moved, batches, batch_seconds = _naive(sample)
    finished = time.time()
    cpu_after, backend_after = _cpu_seconds(), backend_cpu_seconds(backend)
    same_backend = connection.connection.info.backend_pid == backend
    return {
        "moved": moved,
        "batches": batches,
        "started": started,
        "finished": finished,
        "batch_seconds": [round(seconds, 6) for seconds in batch_seconds],
        # CPU seconds of this process (the embedded engine's threads included) and of its
        # PostgreSQL backend: what the run cost, whatever else the machine was doing.
        "cpu_s": round(cpu_after - cpu_before, 3),
        "backend_cpu_s": (
            round(backend_after - backend_before, 3)
            if same_backend and backend_before is not None and backend_after is not None
            else None
        ),
        "received": None,
    }


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def backend_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a local PostgreSQL backend, from /proc (None when the
    server is not on this machine)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the command name (in parentheses, which may hold spaces) come the fields from the
    # third on: utime and stime are the 14th and 15th, in clock ticks.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
