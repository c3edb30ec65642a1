"""3. Freshness: under a steady registration rate, the time from the commit of an event to its
row in ClickHouse, with the default settings and the real pieces (gunicorn, Celery worker and
beat, the wake-up after commit), each started by docker/entrypoint.sh as in its container.

The delay of each event is `relayed_at - event_date_time` in ClickHouse: `event_date_time` is the
outbox row's `occurred_at`, taken in the request just before its transaction commits, and
`relayed_at` is filled in by ClickHouse (`DEFAULT now64(6)`) when the relay's insert runs; both
clocks are this machine's. The insert makes the row visible a few milliseconds later (the
relay's `duration_ms`), which this does not add.
"""

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from django.conf import settings

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table

from .harness import Child, Stack, read_line, rss_kib, summarize_ms, wait_until
from .throughput import event_log_truncate
from .workload import outbox_count, outbox_truncate

# How long the bench waits, at most, for a process under test to come up: a cap for a broken
# start, not a measurement (the time it did take is measured and reported).
START_CAP_S = 300
# A drain counts as stalled when the outbox has not shrunk for this many times the time the
# relay stack took to start on this machine, now (importing Django and Celery, connecting,
# forking the pool: the same kind of work a relay's first batch does), and never for less
# than STALL_FLOOR_S. Start-up takes 1.3 to 2.3 s on the 2-core machine of docs/benchmarks.md,
# so a relay gets 7 to 12 s there, and proportionally more on a slower or busier machine (the
# warm-up's first batches pay the relay's own first imports and connections, which slow down
# alike): with ten busy loops beside it, start-up took 10 to 13 s and the patience was 50 to
# 65 s. On a machine like this one a relay that is really stuck (blocked until the task's soft
# time limit, 80 s) is still caught.
STALL_FACTOR = 5
STALL_FLOOR_S = 5.0


def _ready(probe_dir: Path, role: str) -> bool:
    try:
        states = json.loads((probe_dir / f"{role}.ready.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(states) and all(state == "ok" for state in states.values())


def stall_after(startup_s: float) -> float:
    return max(STALL_FLOOR_S, STALL_FACTOR * startup_s)


def wait_drained(*, stall_after_s: float, interval: float = 0.1) -> tuple[bool, float]:
    """Wait until the outbox is empty, as long as it keeps shrinking: give up only when its
    count has not fallen for `stall_after_s` seconds. Returns (drained, seconds waited)."""
    started = last_progress = time.monotonic()
    left = outbox_count()
    while left:
        time.sleep(interval)
        now, count = time.monotonic(), outbox_count()
        if count < left:
            last_progress = now
        elif now - last_progress > stall_after_s:
            return False, now - started
        left = count
    return True, time.monotonic() - started


def broker_queues_clear() -> None:
    """Drop wake-ups left in the bench's broker database by earlier phases."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        broker.delete(settings.OUTBOX_QUEUE, "default")
    finally:
        broker.close()


def start_relay_stack(stack: Stack, *, relay: str) -> tuple[list, float]:
    """Worker and beat (`relay="celery"`, the default deployment) or the plain relay loop
    (`relay="loop"`), started and ready (their readiness probes' files say so); and the seconds
    that took."""
    probe_dir = Path(stack.env["PROBE_DIR"])
    for stale in probe_dir.glob("*"):
        stale.unlink()
    broker_queues_clear()
    started = time.monotonic()
    if relay == "loop":
        loop = stack.spawn_role("relay", name="relay-loop")
        if not wait_until(lambda: _ready(probe_dir, "relay"), timeout=START_CAP_S, interval=0.1):
            raise RuntimeError(f"the relay loop did not become ready:\n{loop.log_tail()}")
        return [loop], time.monotonic() - started
    worker = stack.spawn_role("worker", name=f"worker-{relay}")
    beat = stack.spawn_role("beat", name=f"beat-{relay}")
    if not wait_until(lambda: _ready(probe_dir, "worker"), timeout=START_CAP_S, interval=0.1):
        raise RuntimeError(f"the worker did not become ready:\n{worker.log_tail()}")
    if not wait_until((probe_dir / "beat.heartbeat").exists, timeout=START_CAP_S, interval=0.1):
        raise RuntimeError(f"beat did not start:\n{beat.log_tail()}")
    return [worker, beat], time.monotonic() - started


def fixed_rate_load(stack: Stack, url: str, *, rate: float, duration: float, prefix: str) -> dict:
    load = stack.spawn_python(
        f"load-{prefix}",
        "-m",
        "bench.http_load",
        "fixed-rate",
        "--url",
        url,
        "--path",
        "/api/v1/users/",
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--prefix",
        prefix,
        stdout=subprocess.PIPE,
    )
    try:
        return json.loads(read_line(load, timeout=duration + 120))
    finally:
        stack.stop(load)


def _delays(prefix: str) -> list[float]:
    result = clickhouse_client().query(
        f"""
        SELECT dateDiff('microsecond', event_date_time, relayed_at) / 1e6
        FROM {event_log_table()} FINAL
        WHERE event_type = 'user_created' AND position(event_context, %(marker)s) > 0
        """,
        parameters={"marker": f'"{prefix}-'},
    )
    return [row[0] for row in result.result_rows]


def _peak_rss_mib(child: Child) -> dict[str, float]:
    """Peak RSS of a relay process and of its children (celery's prefork pool), in MiB."""
    pids = {"main": child.pid}
    children = Path(f"/proc/{child.pid}/task/{child.pid}/children")
    with contextlib.suppress(OSError):
        for number, pid in enumerate(children.read_text().split(), start=1):
            pids[f"child {number}"] = int(pid)
    peaks = {}
    for name, pid in pids.items():
        if rss := rss_kib(pid):
            peaks[name] = round(rss[1] / 1024, 1)
    return peaks


class RelayStalled(Exception):
    """Warm-up events stopped leaving the outbox: a relay process is stuck."""


def _measure(stack: Stack, *, rate: float, duration: float, warmup: float, relay: str) -> dict:
    outbox_truncate()
    event_log_truncate()
    web, url = stack.start_web(name=f"web-freshness-{relay}")
    relays, startup_s = start_relay_stack(stack, relay=relay)
    # Every wait below scales with how fast this machine started the relay just now.
    patience = stall_after(startup_s)
    try:
        fixed_rate_load(stack, url, rate=rate, duration=warmup, prefix=f"warmup-{relay}")
        warm, warmup_drain_s = wait_drained(stall_after_s=patience)
        if not warm:
            raise RelayStalled(
                f"{outbox_count()} warm-up events left: the outbox did not shrink for "
                f"{patience:.1f}s ({STALL_FACTOR}x the relay's start-up, {startup_s:.1f}s)"
            )
        prefix = f"fresh-{relay}"
        load = fixed_rate_load(stack, url, rate=rate, duration=duration, prefix=prefix)
        # An event leaves the outbox only after its ClickHouse insert returned (the batch is
        # settled after the insert), so an empty outbox means every row is in ClickHouse.
        drained, drain_s = wait_drained(stall_after_s=patience)
        delays = _delays(prefix)
        peak_rss = _peak_rss_mib(relays[0])
    finally:
        for process in [web, *relays]:
            stack.stop(process)
    created = load["statuses"].get("201", 0)
    if not drained or len(delays) != created:
        raise RuntimeError(
            f"freshness ({relay}): {created} registrations, {len(delays)} events in ClickHouse"
            f" ({outbox_count()} left in the outbox)"
        )
    return {
        "startup_s": round(startup_s, 2),
        "stall_after_s": round(patience, 2),
        "warmup_drain_s": round(warmup_drain_s, 2),
        "final_drain_s": round(drain_s, 2),
        "achieved_rate_per_s": round(created / load["seconds"], 1),
        "events": len(delays),
        "delay": summarize_ms(delays),
        "request": summarize_ms(load["latencies"]),
        "relay_peak_rss_mib": peak_rss,
        "_samples": delays,
    }


def bench_freshness(
    stack: Stack,
    *,
    rate: float,
    duration: float,
    warmup: float,
    relay: str,
    step: Callable[[str], None],
    attempts: int = 3,
) -> dict:
    """Measured after a warm-up that must drain completely; a stack whose relay is stuck after
    the warm-up is recorded in `stalls` and started again."""
    label = "worker + beat + wake-up" if relay == "celery" else "relay loop (outbox_relay)"
    stalls = []
    for attempt in range(1, attempts + 1):
        step(f"freshness ({label}): {rate:g} registrations/s for {duration:g}s, try {attempt}")
        try:
            measured = _measure(stack, rate=rate, duration=duration, warmup=warmup, relay=relay)
        except RelayStalled as stall:
            stalls.append(str(stall))
            continue
        return {
            "relay": relay,
            "label": label,
            "rate_per_s": rate,
            "seconds": duration,
            "stalls": stalls,
            **measured,
        }
    raise RuntimeError(f"freshness ({relay}): the relay stalled {attempts} times: {stalls}")
