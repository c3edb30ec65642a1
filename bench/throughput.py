"""1. Relay throughput: events/s from a pre-filled outbox to ClickHouse, beside the limit and the
naive approach.

First in one process against the embedded engine (no HTTP front: the relay's own efficiency,
and against a sink that discards the rows, its ceiling), then through the development HTTP
front for several batch sizes and numbers of relay processes, then the naive approach. Every
drain is checked: the destination got exactly the events filled (rows and distinct event ids)
and the outbox is empty, or the run fails.
"""

import contextlib
import json
import shutil
import statistics
import subprocess
from collections.abc import Callable, Sequence

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table

from .harness import Stack, read_line, summarize_ms
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


class DrainMismatch(RuntimeError):
    """A drain did not move exactly the events it was given."""


def drain_check(label: str, *, events: int, moved: int, rows: int, distinct: int, left: int):
    """Fail loudly unless the destination holds each of the `events` filled exactly once and
    nothing is left in the outbox."""
    if (moved, rows, distinct, left) != (events, events, events, 0):
        raise DrainMismatch(
            f"{label}: {events:,} events filled, {moved:,} reported moved, destination holds "
            f"{rows:,} rows / {distinct:,} distinct event ids, {left:,} left in the outbox"
        )


class Movers:
    """`processes` bench.relay_worker processes, started once (start-up excluded) and run on
    demand, all together: each `run()` is one drain of whatever the outbox holds."""

    def __init__(
        self,
        stack: Stack,
        mode: str,
        *,
        processes: int,
        batch_size: int = 0,
        sample: int = 0,
        env: dict[str, str] | None = None,
        name: str = "",
    ) -> None:
        self.stack, self.mode = stack, mode
        self.children = [
            stack.spawn_python(
                f"{name or mode}-{batch_size}-{processes}-{index}",
                "-m",
                "bench.relay_worker",
                mode,
                "--batch-size",
                str(batch_size or 1),
                "--sample",
                str(sample or 1),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for index in range(processes)
        ]
        try:
            self._await_ready()
        except BaseException:
            self.close()
            raise

    def _await_ready(self) -> None:
        for child in self.children:
            if (line := read_line(child, timeout=300)) != "ready":
                raise RuntimeError(f"{child.name}: expected 'ready', got {line!r}")

    def run(self, before_start: Callable[[], None] | None = None) -> dict:
        """One drain; wall time from the go signal to the last process done. `before_start`
        runs first, once every process is ready."""
        if before_start is not None:
            before_start()
        for child in self.children:
            child.process.stdin.write("go\n")
            child.process.stdin.flush()
        # Each process is ready for the next run once it has answered (see relay_worker).
        results = [json.loads(read_line(child, timeout=1800)) for child in self.children]
        seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
        moved = sum(r["moved"] for r in results)
        backend = [r["backend_cpu_s"] for r in results]
        cpu_s = sum(r["cpu_s"] for r in results)
        backend_cpu_s = None if None in backend else sum(backend)
        return {
            "events": moved,
            "batches": sum(r["batches"] for r in results),
            "seconds": round(seconds, 3),
            "events_per_s": round(moved / seconds, 1),
            "per_process": [r["moved"] for r in results],
            "batch_ms": summarize_ms([value for r in results for value in r["batch_seconds"]]),
            "cpu_s": round(cpu_s, 3),
            "backend_cpu_s": backend_cpu_s,
            "received": [r["received"] for r in results],
            "_batch_seconds": [value for r in results for value in r["batch_seconds"]],
        }

    def close(self) -> None:
        for child in self.children:
            if child.process.stdin and not child.process.stdin.closed:
                with contextlib.suppress(OSError):
                    child.process.stdin.close()
        failed = []
        for child in self.children:
            try:
                code = child.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                code = None
            self.stack.stop(child)
            if code != 0:
                failed.append(f"{child.name} failed ({code}):\n{child.log_tail()}")
        if failed:
            raise RuntimeError("\n".join(failed))


def _refill(events: int) -> None:
    outbox_truncate()
    OutboxFiller().pending(events)
    outbox_vacuum()


# --- in one process, against the embedded engine and against a sink ---------------------------

ENGINE_PAIR = ("relay-inprocess", "limit-inprocess")
SINK_PAIR = ("relay-sink", "limit-sink")


def _in_process_movers(stack: Stack, mode: str, *, batch_size: int) -> Movers:
    """One process of `mode` with its own fresh embedded engine (or its sink)."""
    data_dir = stack.work_dir / "chdb" / mode
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return Movers(
        stack,
        mode,
        processes=1,
        batch_size=batch_size,
        # The settings accept the embedded engine only with DEBUG=true; the worker turns DEBUG
        # off again once they are loaded (see relay_worker.main).
        env={"CLICKHOUSE_URL": f"chdb://{data_dir}", "DEBUG": "true"},
    )


def _in_process_run(movers: Movers, *, events: int, batch_size: int) -> dict:
    _refill(events)
    run = movers.run()
    (received,) = run.pop("received")
    drain_check(
        f"{movers.mode} b={batch_size}",
        events=events,
        moved=run["events"],
        rows=received["rows"],
        distinct=received["distinct"],
        left=outbox_count(),
    )
    cpu = run["cpu_s"] + (run["backend_cpu_s"] or 0.0)
    return {
        "mode": movers.mode,
        "batch_size": batch_size,
        **run,
        "received": received,
        "cpu_ms_per_1k_events": round(cpu / events * 1000 * 1000, 2),
    }


def _ratio_summary(runs: list[dict], relay_mode: str, limit_mode: str) -> dict:
    """relay ÷ limit per round (the two ran back to back), and over the medians; the same from
    the CPU both spent per event (limit's ÷ relay's: 1 means the relay costs no more)."""
    rounds = sorted({r["round"] for r in runs})

    def run(mode: str, number: int) -> dict:
        return next(r for r in runs if (r["mode"], r["round"]) == (mode, number))

    per_round = [
        round(run(relay_mode, n)["events_per_s"] / run(limit_mode, n)["events_per_s"], 3)
        for n in rounds
    ]
    cpu_per_round = [
        round(
            run(limit_mode, n)["cpu_ms_per_1k_events"] / run(relay_mode, n)["cpu_ms_per_1k_events"],
            3,
        )
        for n in rounds
    ]
    relay = statistics.median(r["events_per_s"] for r in runs if r["mode"] == relay_mode)
    limit = statistics.median(r["events_per_s"] for r in runs if r["mode"] == limit_mode)
    return {
        "relay_events_per_s": relay,
        "limit_events_per_s": limit,
        "relay_over_limit": round(statistics.median(per_round), 3),
        "relay_over_limit_per_round": per_round,
        "relay_over_limit_min": min(per_round),
        "relay_over_limit_max": max(per_round),
        "ratio_of_medians": round(relay / limit, 3),
        "cpu_relay_over_limit": round(statistics.median(cpu_per_round), 3),
        "cpu_relay_over_limit_per_round": cpu_per_round,
    }


def bench_in_process(
    stack: Stack, *, events: int, batch_size: int, rounds: int, step: Callable[[str], None]
) -> dict:
    """`rounds` rounds of the four in-process modes, each on the same `events` freshly filled
    and vacuumed rows, each mode served by one process started once; within each pair the
    order alternates from round to round, so drift (autovacuum, neighbours) does not always
    favour the same one."""
    step(f"in one process: starting {', '.join((*ENGINE_PAIR, *SINK_PAIR))}")
    movers: dict[str, Movers] = {}
    runs = []
    try:
        for mode in (*ENGINE_PAIR, *SINK_PAIR):
            movers[mode] = _in_process_movers(stack, mode, batch_size=batch_size)
        for number in range(rounds):
            for pair in (ENGINE_PAIR, SINK_PAIR):
                for mode in pair if number % 2 == 0 else pair[::-1]:
                    step(f"{mode}: {events:,} events, batch {batch_size:,}, round {number + 1}")
                    run = _in_process_run(movers[mode], events=events, batch_size=batch_size)
                    runs.append({**run, "round": number})
    finally:
        for mode, mover in movers.items():
            mover.close()
            shutil.rmtree(stack.work_dir / "chdb" / mode, ignore_errors=True)
    outbox_truncate()
    modes = {}
    for mode in (*ENGINE_PAIR, *SINK_PAIR):
        mine = [r for r in runs if r["mode"] == mode]
        rates = [r["events_per_s"] for r in mine]
        modes[mode] = {
            "events_per_s": rates,
            "median_events_per_s": statistics.median(rates),
            "batch_ms": summarize_ms([s for r in mine for s in r["_batch_seconds"]]),
            "cpu_ms_per_1k_events": statistics.median(r["cpu_ms_per_1k_events"] for r in mine),
        }
    return {
        "events": events,
        "batch_size": batch_size,
        "rounds": rounds,
        "runs": runs,
        "modes": modes,
        "engine": _ratio_summary(runs, *ENGINE_PAIR),
        "sink": _ratio_summary(runs, *SINK_PAIR),
    }


# --- through the HTTP front ------------------------------------------------------------------


def _drain_run(movers: Movers, *, events: int, batch_size: int, processes: int) -> dict:
    _refill(events)
    # Emptied after the workers' warm-up inserts (or the last run), before they start.
    run = movers.run(before_start=event_log_truncate)
    run.pop("received")
    rows, distinct = event_log_counts()
    drain_check(
        f"{movers.mode} b={batch_size} p={processes}",
        events=events,
        moved=run["events"],
        rows=rows,
        distinct=distinct,
        left=outbox_count(),
    )
    return {
        "mode": movers.mode,
        "batch_size": batch_size,
        "processes": processes,
        **run,
        "clickhouse_rows": rows,
        "clickhouse_distinct": distinct,
    }


def _http_config_runs(
    stack: Stack,
    *,
    events: int,
    batch_size: int,
    processes: int,
    repeats: int,
    step: Callable[[str], None],
) -> list[dict]:
    """`repeats` drains each by the relay and by the limit, taking turns, each mode's
    processes started once for all of them."""
    runs = []
    movers: dict[str, Movers] = {}
    try:
        for mode in ("relay", "limit"):
            movers[mode] = Movers(stack, mode, processes=processes, batch_size=batch_size)
        for repeat in range(repeats):
            for mode in ("relay", "limit") if repeat % 2 == 0 else ("limit", "relay"):
                step(f"{mode}: {events:,} events, batch {batch_size:,}, {processes} process(es)")
                run = _drain_run(
                    movers[mode], events=events, batch_size=batch_size, processes=processes
                )
                runs.append({**run, "repeat": repeat})
    finally:
        for mover in movers.values():
            mover.close()
    return runs


def bench_naive(stack: Stack, *, sample: int, repeats: int, step: Callable[[str], None]) -> dict:
    """One insert per event through the HTTP front, `repeats` times, each on fresh rows."""
    runs = []
    for repeat in range(repeats):
        step(f"naive: {sample:,} single-event inserts, run {repeat + 1}/{repeats}")
        _refill(sample + NAIVE_WARMUP)
        movers = Movers(stack, "naive", processes=1, sample=sample)
        try:
            run = movers.run(before_start=event_log_truncate)
        finally:
            movers.close()
        run.pop("received")
        rows, distinct = event_log_counts()
        # Naive reads its rows without claiming them: the outbox keeps them, by design.
        drain_check(
            "naive", events=sample, moved=run["events"], rows=rows, distinct=distinct, left=0
        )
        runs.append({"repeat": repeat, **run})
    outbox_truncate()
    event_log_truncate()
    rates = [r["events_per_s"] for r in runs]
    return {
        "mode": "naive",
        "batch_size": 1,
        "processes": 1,
        "events": sample,
        "repeats": repeats,
        "runs": runs,
        "events_per_s_runs": rates,
        "events_per_s": statistics.median(rates),
        "insert_ms": summarize_ms([s for r in runs for s in r["_batch_seconds"]]),
    }


def http_configs(
    batch_sizes: Sequence[int], processes: Sequence[int], default_batch_size: int
) -> list[tuple[int, int]]:
    """(batch size, processes) measured through the HTTP front: each batch size with one
    process, and each number of processes at the default batch size (one factor at a time
    around the default, which keeps `make bench` within its ten minutes)."""
    configs = [(batch_size, 1) for batch_size in batch_sizes]
    configs += [(default_batch_size, count) for count in processes if count != 1]
    return sorted(set(configs), key=lambda config: (config[1], config[0]))


def bench_throughput(
    stack: Stack,
    *,
    events: int,
    batch_sizes: Sequence[int],
    processes: Sequence[int],
    repeats: int,
    default_batch_size: int,
    naive_sample: int,
    naive_repeats: int,
    in_process_rounds: int,
    step: Callable[[str], None],
) -> dict:
    """In one process: `in_process_rounds` rounds at the default batch size. Through the HTTP
    front: for every `http_configs` (batch size, processes), the relay and the limit drain the
    same `events` pre-filled rows, `repeats` times, taking turns; the median run counts. The
    naive approach inserts `naive_sample` of them one by one, `naive_repeats` times."""
    in_process = bench_in_process(
        stack, events=events, batch_size=default_batch_size, rounds=in_process_rounds, step=step
    )
    configs = http_configs(batch_sizes, processes, default_batch_size)
    runs = []
    for batch_size, count in configs:
        runs += _http_config_runs(
            stack,
            events=events,
            batch_size=batch_size,
            processes=count,
            repeats=repeats,
            step=step,
        )
    outbox_truncate()
    event_log_truncate()

    naive = bench_naive(stack, sample=naive_sample, repeats=naive_repeats, step=step)

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
        for batch_size, count in configs
    ]
    headline = next(
        r for r in ratios if r["batch_size"] == default_batch_size and r["processes"] == 1
    )
    return {
        "events": events,
        "repeats": repeats,
        "default_batch_size": default_batch_size,
        "in_process": in_process,
        "runs": runs,
        "naive": naive,
        "ratios": ratios,
        "headline": headline,
    }
