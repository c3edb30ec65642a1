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


def _worker_ready(probe_dir: Path) -> bool:
    try:
        states = json.loads((probe_dir / "worker.ready.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(states) and all(state == "ok" for state in states.values())


def broker_queues_clear() -> None:
    """Drop wake-ups left in the bench's broker database by earlier phases."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        broker.delete(settings.OUTBOX_QUEUE, "default")
    finally:
        broker.close()


def start_relay_stack(stack: Stack, *, relay: str) -> list:
    """Worker and beat (`relay="celery"`, the default deployment) or the plain relay loop
    (`relay="loop"`), started and ready."""
    probe_dir = Path(stack.env["PROBE_DIR"])
    for stale in probe_dir.glob("*"):
        stale.unlink()
    broker_queues_clear()
    if relay == "loop":
        return [stack.spawn_role("relay", name="relay-loop")]
    worker = stack.spawn_role("worker", name=f"worker-{relay}")
    beat = stack.spawn_role("beat", name=f"beat-{relay}")
    if not wait_until(lambda: _worker_ready(probe_dir), timeout=90, interval=0.2):
        raise RuntimeError(f"the worker did not become ready:\n{worker.log_tail()}")
    if not wait_until((probe_dir / "beat.heartbeat").exists, timeout=60, interval=0.2):
        raise RuntimeError(f"beat did not start:\n{beat.log_tail()}")
    return [worker, beat]


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
    """Warm-up events still in the outbox after the warm-up: a relay process is stuck."""


def _measure(stack: Stack, *, rate: float, duration: float, warmup: float, relay: str) -> dict:
    outbox_truncate()
    event_log_truncate()
    web, url = stack.start_web(name=f"web-freshness-{relay}")
    relays = start_relay_stack(stack, relay=relay)
    try:
        fixed_rate_load(stack, url, rate=rate, duration=warmup, prefix=f"warmup-{relay}")
        if not wait_until(lambda: outbox_count() == 0, timeout=5, interval=0.1):
            raise RelayStalled(f"{outbox_count()} warm-up events left after {warmup:g}s")
        prefix = f"fresh-{relay}"
        load = fixed_rate_load(stack, url, rate=rate, duration=duration, prefix=prefix)
        drained = wait_until(lambda: outbox_count() == 0, timeout=60, interval=0.2)
        # Past the last relay's commit: its ClickHouse insert was done before.
        time.sleep(0.5)
        delays = _delays(prefix)
        peak_rss = _peak_rss_mib(relays[0])
    finally:
        for process in [web, *relays]:
            stack.stop(process)
    created = load["statuses"].get("201", 0)
    if not drained or len(delays) != created:
        raise RuntimeError(
            f"freshness ({relay}): {created} registrations, {len(delays)} events in ClickHouse"
        )
    return {
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
