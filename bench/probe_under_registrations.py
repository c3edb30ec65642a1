"""The web role's liveness probe while clients register as fast as they can.

    python -m bench.probe_under_registrations [--clients 16] [--seconds 20]

Starts the web role (gunicorn through docker/entrypoint.sh, production settings, the real
password hasher, rate limits off) against the development database, then runs `--clients`
threads that each register new users back to back, while one more thread sends
`GET /healthz/live` every 100 ms as the kubelet would. Prints the probe's latency (p50, p99,
max) beside the chart's 2-second liveness timeout, and the registrations' outcomes.
"""

import argparse
import collections
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from app.config.env import PROJECT_ROOT
from tests.support.processes import free_port, wait_until

from .harness import percentile

PROBE_TIMEOUT_SECONDS = 2.0


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "api.example.com",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/die_hard"
        ),
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "CLICKHOUSE_URL": "http://127.0.0.1:1/",  # web never talks to ClickHouse
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "REGISTRATION_RATE_PER_CLIENT": "off",
        "REGISTRATION_RATE_GLOBAL": "off",
    }
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=PROJECT_ROOT, env=env
    )
    if migrated.returncode != 0:
        return 1
    web = subprocess.Popen(
        [str(PROJECT_ROOT / "docker" / "entrypoint.sh"), "web"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        if not wait_until(lambda: _probe_ok(port), timeout=30):
            sys.stderr.write("the web role did not start\n")
            return 1
        outcomes: collections.Counter[int] = collections.Counter()
        probes: list[float] = []
        running = threading.Event()
        running.set()

        def register() -> None:
            while running.is_set():
                body = json.dumps(
                    {"email": f"{uuid.uuid4().hex}@example.com", "password": "Juniper-Comet-7316"}
                ).encode()
                status, _seconds = _request(port, "POST", "/api/v1/users/", body)
                outcomes[status] += 1

        def probe() -> None:
            while running.is_set():
                _status, seconds = _request(port, "GET", "/healthz/live")
                probes.append(seconds)
                time.sleep(0.1)

        threads = [threading.Thread(target=register) for _ in range(args.clients)]
        threads.append(threading.Thread(target=probe))
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        running.clear()
        for thread in threads:
            thread.join()
    finally:
        web.terminate()
        web.wait(timeout=30)
    registrations = sum(outcomes.values())
    print(  # noqa: T201
        f"{args.clients} clients registering for {args.seconds:g} s: {registrations} requests "
        f"({registrations / args.seconds:.0f}/s), outcomes {dict(sorted(outcomes.items()))}"
    )
    print(  # noqa: T201
        f"GET /healthz/live ({len(probes)} probes): p50 {percentile(probes, 50) * 1000:.1f} ms, "
        f"p99 {percentile(probes, 99) * 1000:.1f} ms, max {max(probes) * 1000:.1f} ms "
        f"(liveness timeout {PROBE_TIMEOUT_SECONDS:g} s)"
    )
    return 0


def _probe_ok(port: int) -> bool:
    try:
        return _request(port, "GET", "/healthz/live")[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
