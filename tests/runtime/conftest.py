"""Real processes for the runtime contract: gunicorn, celery worker and beat, started through
docker/entrypoint.sh as in their containers, with every backing service reached through a
CuttableProxy so a test can make it unreachable."""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from app.config.env import PROJECT_ROOT
from tests.support.fixtures import TEST_CLICKHOUSE_DATABASE
from tests.support.processes import free_port
from tests.support.proxy import CuttableProxy

ENTRYPOINT = PROJECT_ROOT / "docker" / "entrypoint.sh"
STRONG_SECRET_KEY = "k7Qm2vX9pL4wR8tZ1nB6cY3hJ5dF0gS7aE2uI9oP4lK8mN1qW6xV3zT5rY0bH2jG"


class RoleProcess:
    """One role started by the entrypoint, its output kept in a log file."""

    def __init__(self, role: str, env: dict[str, str], log_path: Path, *args: str):
        self.role = role
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [str(ENTRYPOINT), role, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group, so that kill_container() reaches the children too.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill_container(self) -> None:
        """SIGKILL every process of the role at once, as when its container is killed."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def proxies(clickhouse_url) -> Iterator[dict[str, CuttableProxy]]:
    database = connection.settings_dict
    clickhouse = urlsplit(clickhouse_url)
    made = {
        "postgres": CuttableProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)),
        "redis": CuttableProxy("127.0.0.1", 6379),
        "clickhouse": CuttableProxy(clickhouse.hostname, clickhouse.port),
    }
    yield made
    for proxy in made.values():
        proxy.close()


@pytest.fixture
def role_env(proxies, tmp_path) -> dict[str, str]:
    """A production configuration (DEBUG=false, strict hosts, HTTPS redirect) whose every
    backing service goes through a proxy; PROBE_DIR is this test's own."""
    database = connection.settings_dict
    probe_dir = tmp_path / "probes"
    probe_dir.mkdir()
    return {
        "PATH": f"{PROJECT_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "DEBUG": "false",
        "SECRET_KEY": STRONG_SECRET_KEY,
        "ALLOWED_HOSTS": "api.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "DATABASE_URL": (
            f"postgres://{database['USER'] or 'postgres'}@127.0.0.1:{proxies['postgres'].port}"
            f"/{database['NAME']}"
        ),
        "DATABASE_CONNECT_TIMEOUT": "2",
        "REDIS_URL": f"redis://127.0.0.1:{proxies['redis'].port}/15",
        "CLICKHOUSE_URL": f"http://127.0.0.1:{proxies['clickhouse'].port}/",
        "CLICKHOUSE_DATABASE": TEST_CLICKHOUSE_DATABASE,
        "CLICKHOUSE_CONNECT_TIMEOUT": "2",
        "LOG_FORMAT": "json",
        "PROBE_DIR": str(probe_dir),
        "PROBE_INTERVAL": "1",
        "BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
        "WEB_BIND": f"127.0.0.1:{free_port()}",
        "WEB_WORKER_TMP_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "4",
        "WORKER_CONCURRENCY": "1",
        "REGISTRATION_RATE_PER_CLIENT": "off",
        "REGISTRATION_RATE_GLOBAL": "off",
        # Each test that scrapes gives each role a port of its own (tests/runtime/test_metrics.py).
        "METRICS_BIND": "off",
    }


@pytest.fixture
def start_role(tmp_path) -> Iterator[Callable[..., RoleProcess]]:
    started: list[RoleProcess] = []

    def start(role: str, env: dict[str, str], *args: str) -> RoleProcess:
        process = RoleProcess(role, env, tmp_path / f"{role}-{len(started)}.log", *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
