"""What one exec probe costs: CPU seconds per run of `python -m app.config.probe CHECK`, as the
chart's worker, beat and relay pods run it every 10 to 15 seconds.

    python -m bench.exec_probes [--runs N]

Each probe runs N times against fresh probe files; the floor is the same interpreter starting
with nothing to do (`python -c pass`), which no Python probe can beat. CPU time is the child's
user + system time (getrusage), so other load on the machine changes it little. Runs alternate
between the probes, so drift hits them alike.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.config.env import PROJECT_ROOT

from .harness import percentile

CHECKS = ("worker-live", "worker-ready", "beat-live", "relay-ready")


def _cpu_seconds(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as probe_dir:
        for role in ("worker", "beat", "relay"):
            (Path(probe_dir) / f"{role}.heartbeat").touch()
            (Path(probe_dir) / f"{role}.ready.json").write_text('{"database": "ok"}')
        env = {**os.environ, "PROBE_DIR": probe_dir, "PROBE_INTERVAL": "3600"}
        commands = {"floor: python -c pass": [sys.executable, "-c", "pass"]}
        commands |= {check: [sys.executable, "-m", "app.config.probe", check] for check in CHECKS}
        samples: dict[str, list[float]] = {name: [] for name in commands}
        started = time.monotonic()
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(_cpu_seconds(command, env))
    floor = percentile(samples["floor: python -c pass"], 50)
    print(f"exec probe CPU time, {args.runs} runs each ({time.monotonic() - started:.0f} s)")  # noqa: T201
    print(f"{'command':<24} {'p50 ms':>8} {'p99 ms':>8} {'p50 - floor':>12}")  # noqa: T201
    for name, values in samples.items():
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:<24} {p50 * 1000:8.1f} {p99 * 1000:8.1f} {(p50 - floor) * 1000:10.1f} ms")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
