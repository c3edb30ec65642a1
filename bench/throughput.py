"""1. Relay throughput: events/s from a pre-filled outbox to ClickHouse, beside the limit and the
naive approach, for several batch sizes and numbers of relay processes."""

import json
import statistics
import subprocess
from collections.abc import Callable, Sequence

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table

from .harness import Stack, read_line
from .relay_worker import NAIVE_WARMUP
from .workload import OutboxFiller, outbox_count, outbox_truncate, outbox_vacuum


def event_log_truncate() -> None:
    clickhouse_client().command(f"TRUNCATE TABLE {event_log_table()}")


def event_log_counts() -> tuple[int, int]:
    """(rows, distinct event ids) in ClickHouse, duplicates included in the first."""
    rows, distinct = (
        clickhouse_client()
        .query(f"SELECT count(), uniqExact(event_id) FROM {event_log_table()}")
        .first_row
    )
    return rows, distinct


def run_movers(
    stack: Stack, mode: str, *, processes: int, batch_size: int = 0, sample: int = 0
) -> dict:
    """Start `processes` bench.relay_worker processes together; wall time from the go signal to
    the last one done."""
    movers = [
        stack.spawn_python(
            f"{mode}-{batch_size}-{processes}-{index}",
            "-m",
            "bench.relay_worker",
            mode,
            "--batch-size",
            str(batch_size or 1),
            "--sample",
            str(sample or 1),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for index in range(processes)
    ]
    try:
        for mover in movers:
            if (line := read_line(mover, timeout=120)) != "ready":
                raise RuntimeError(f"{mover.name}: expected 'ready', got {line!r}")
        for mover in movers:
            mover.process.stdin.write("go\n")
            mover.process.stdin.flush()
        results = [json.loads(read_line(mover, timeout=900)) for mover in movers]
        for mover in movers:
            if mover.process.wait(timeout=60) != 0:
                raise RuntimeError(f"{mover.name} failed:\n{mover.log_tail()}")
    finally:
        for mover in movers:
            stack.stop(mover)
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    moved = sum(r["moved"] for r in results)
    return {
        "events": moved,
        "batches": sum(r["batches"] for r in results),
        "seconds": round(seconds, 3),
        "events_per_s": round(moved / seconds, 1),
        "per_process": [r["moved"] for r in results],
    }


def _drain_run(stack: Stack, mode: str, *, events: int, batch_size: int, processes: int) -> dict:
    outbox_truncate()
    event_log_truncate()
    OutboxFiller().pending(events)
    outbox_vacuum()
    run = run_movers(stack, mode, processes=processes, batch_size=batch_size)
    left = outbox_count()
    rows, distinct = event_log_counts()
    if left or run["events"] != events or distinct != events:
        raise RuntimeError(
            f"{mode} b={batch_size} p={processes}: moved {run['events']} of {events}, "
            f"{left} left in the outbox, {distinct} distinct in ClickHouse"
        )
    return {
        "mode": mode,
        "batch_size": batch_size,
        "processes": processes,
        **run,
        "clickhouse_rows": rows,
    }


def bench_throughput(
    stack: Stack,
    *,
    events: int,
    batch_sizes: Sequence[int],
    processes: Sequence[int],
    repeats: int,
    default_batch_size: int,
    naive_sample: int,
    step: Callable[[str], None],
) -> dict:
    """Every (mode, batch size, processes) of the relay and the limit drains the same `events`
    pre-filled rows, `repeats` times, relay and limit taking turns; the median run counts. The
    naive approach inserts `naive_sample` of them one by one."""
    runs = []
    for batch_size in batch_sizes:
        for count in processes:
            for repeat in range(repeats):
                for mode in ("relay", "limit"):
                    step(f"{mode}: {events:,} events, batch {batch_size:,}, {count} process(es)")
                    run = _drain_run(
                        stack, mode, events=events, batch_size=batch_size, processes=count
                    )
                    runs.append({**run, "repeat": repeat})

    step(f"naive: {naive_sample:,} single-event inserts")
    outbox_truncate()
    event_log_truncate()
    OutboxFiller().pending(naive_sample + NAIVE_WARMUP)
    outbox_vacuum()
    naive = {"mode": "naive", "batch_size": 1, "processes": 1}
    naive.update(run_movers(stack, "naive", processes=1, sample=naive_sample))
    outbox_truncate()
    event_log_truncate()

    def rate(mode: str, batch_size: int, count: int) -> float:
        return statistics.median(
            r["events_per_s"]
            for r in runs
            if (r["mode"], r["batch_size"], r["processes"]) == (mode, batch_size, count)
        )

    ratios = [
        {
            "batch_size": batch_size,
            "processes": count,
            "relay_events_per_s": rate("relay", batch_size, count),
            "limit_events_per_s": rate("limit", batch_size, count),
            "relay_over_limit": round(
                rate("relay", batch_size, count) / rate("limit", batch_size, count), 3
            ),
            "relay_over_naive": round(rate("relay", batch_size, count) / naive["events_per_s"], 1),
        }
        for batch_size in batch_sizes
        for count in processes
    ]
    headline = next(
        r for r in ratios if r["batch_size"] == default_batch_size and r["processes"] == 1
    )
    return {
        "events": events,
        "repeats": repeats,
        "default_batch_size": default_batch_size,
        "runs": runs,
        "naive": naive,
        "ratios": ratios,
        "headline": headline,
    }
