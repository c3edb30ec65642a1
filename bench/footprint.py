"""5. Footprint: a relay process's memory over a long drain, and the web role's probe latency
while registrations load it."""

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from django.db import connection

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table

from .harness import Stack, percentile, read_line, rss_kib, summarize_ms
from .http_load import probe_once
from .throughput import event_log_truncate
from .workload import OutboxFiller, outbox_count, outbox_truncate, outbox_vacuum

PROBE_PATH = "/healthz/live"
# Measured instead when the web role has no liveness probe.
FALLBACK_PROBE_PATH = "/api/v1/openapi.json"


def _anything_due() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM outbox_event WHERE dead_lettered_at IS NULL)")
        return cursor.fetchone()[0]


class RssSampler(threading.Thread):
    """Samples the RSS of `pid` every `interval` seconds: (wall-clock time, KiB) pairs."""

    def __init__(self, pid: int, *, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            if (rss := rss_kib(self.pid)) is None:
                return
            self.samples.append((time.time(), rss[0]))
            self.peak_kib = max(self.peak_kib, rss[1])
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def _batch_times(log: Path) -> list[float]:
    """Wall-clock times of the relay's `outbox_batch_relayed` lines (JSON logs)."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if '"outbox_batch_relayed"' in line:
            with contextlib.suppress(ValueError, KeyError):
                stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                times.append(datetime.fromisoformat(stamp).timestamp())
    return times


def _growth_mib(samples: list[tuple[float, int]]) -> dict:
    """Median RSS over the first and the last fifth of the samples, and the least-squares
    slope over all of them."""
    values = [rss for _t, rss in samples]
    fifth = max(1, len(values) // 5)
    first, last = percentile(values[:fifth], 50), percentile(values[-fifth:], 50)
    times = [t for t, _rss in samples]
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in times) or 1.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread  # KiB/s
    return {
        "first_fifth_mib": round(first / 1024, 1),
        "last_fifth_mib": round(last / 1024, 1),
        "growth_mib": round((last - first) / 1024, 1),
        "slope_mib_per_min": round(slope * 60 / 1024, 2),
    }


def bench_relay_memory(
    stack: Stack, filler: OutboxFiller, *, events: int, step: Callable[[str], None]
) -> dict:
    """Top the outbox up to `events` rows and drain it with the relay role (`manage.py
    outbox_relay`, default batch size), sampling its RSS.

    Growth is judged over the drain itself, from the first batch to the last (the log's
    `outbox_batch_relayed` lines): before it the process is still importing Django.
    """
    step(f"footprint: filling the outbox to {events:,} events")
    missing = events - outbox_count()
    if missing > 0:
        filler.pending(missing)
    outbox_vacuum()
    event_log_truncate()
    step(f"footprint: draining {events:,} events with the relay role, sampling its memory")
    relay = stack.spawn_role("relay", name="relay-footprint")
    sampler = RssSampler(relay.pid)
    sampler.start()
    started = time.time()
    try:
        while _anything_due():
            if not relay.alive():
                raise RuntimeError(f"the relay exited:\n{relay.log_tail()}")
            if time.time() - started > 600:
                raise RuntimeError("the drain took over 10 minutes")
            time.sleep(0.5)
        # An idle interval or two more: the loop must settle, not keep growing.
        time.sleep(2.5)
    finally:
        sampler.stop()
        stack.stop(relay)
    relayed = clickhouse_client().query(f"SELECT count() FROM {event_log_table()}").first_row[0]
    event_log_truncate()
    batches = _batch_times(relay.log_path)
    first_batch, last_batch = batches[0], batches[-1]
    drain = [(t, rss) for t, rss in sampler.samples if first_batch <= t <= last_batch]
    seconds = last_batch - first_batch
    return {
        "process": "docker/entrypoint.sh relay (manage.py outbox_relay)",
        "events": relayed,
        "batches": len(batches),
        "seconds": round(seconds, 1),
        "events_per_s": round(relayed / seconds, 1) if seconds else None,
        "peak_rss_mib": round(sampler.peak_kib / 1024, 1),
        **_growth_mib(drain or sampler.samples),
        # Seconds since the relay started, RSS KiB: the chart's line.
        "samples": [(round(t - started, 2), rss) for t, rss in sampler.samples],
        "drain_window_s": [round(first_batch - started, 2), round(last_batch - started, 2)],
    }


def _run_load(stack: Stack, name: str, *args: str, timeout: float) -> dict:
    child = stack.spawn_python(name, "-m", "bench.http_load", *args, stdout=subprocess.PIPE)
    try:
        return json.loads(read_line(child, timeout=timeout))
    finally:
        stack.stop(child)


def bench_probe_latency(
    stack: Stack,
    *,
    concurrency: int,
    duration: float,
    probe_rate: float,
    step: Callable[[str], None],
) -> dict:
    """Probes on new connections (as the kubelet sends them) at `probe_rate`/s, first on an idle
    web role, then while `concurrency` clients send registrations back to back."""
    step("footprint: web probe latency, idle")
    outbox_truncate()
    web, url = stack.start_web(name="web-footprint")
    try:
        probe_path = PROBE_PATH
        if probe_once(url, PROBE_PATH)[1] != 200:
            probe_path = FALLBACK_PROBE_PATH
        probe_args = ["probe", "--url", url, "--path", probe_path, "--rate", str(probe_rate)]
        idle = _run_load(
            stack, "probe-idle", *probe_args, "--duration", str(duration / 2), timeout=duration
        )
        step(f"footprint: web probe latency under {concurrency} registration clients")
        load = stack.spawn_python(
            "load-footprint",
            "-m",
            "bench.http_load",
            "closed-loop",
            "--url",
            url,
            "--path",
            "/api/v1/users/",
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration + 2),
            "--prefix",
            "footprint",
            stdout=subprocess.PIPE,
        )
        try:
            time.sleep(1)
            loaded = _run_load(
                stack, "probe-loaded", *probe_args, "--duration", str(duration), timeout=120
            )
            registrations = json.loads(read_line(load, timeout=duration + 120))
        finally:
            stack.stop(load)
    finally:
        stack.stop(web)
    outbox_truncate()
    created = registrations["statuses"].get("201", 0)
    return {
        "probe_path": probe_path,
        "probe_is_stand_in": probe_path != PROBE_PATH,
        "probe_rate_per_s": probe_rate,
        "concurrency": concurrency,
        "idle": {**summarize_ms(idle["latencies"]), "statuses": idle["statuses"]},
        "loaded": {**summarize_ms(loaded["latencies"]), "statuses": loaded["statuses"]},
        "registrations": {
            **summarize_ms(registrations["latencies"]),
            "per_s": round(created / registrations["seconds"], 1),
            "statuses": registrations["statuses"],
        },
    }
