"""The bench's own backing services and child processes.

A dedicated PostgreSQL database (`die_hard_bench`, dropped and created by every run), a dedicated
ClickHouse (the embedded engine behind `devtools.clickhouse_http`, so that every process talks
to it over ClickHouse's HTTP interface, as in production), a dedicated Redis database for the
Celery broker, and helpers to start, watch and stop the processes under test.
"""

import contextlib
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from app.config.env import PROJECT_ROOT
from tests.support.processes import free_port, wait_until

ENTRYPOINT = PROJECT_ROOT / "docker" / "entrypoint.sh"
BENCH_DATABASE = "die_hard_bench"
# Neither the development stack's (0) nor the test suite's (15).
BENCH_REDIS_DB = 14

# Variables the bench sets itself; every other variable that `.env` or `.env.example` names is
# blanked for the processes under test, so the code's defaults apply ("empty counts as unset")
# whatever a developer keeps in `.env` or exports in the shell.
_ENV_FILES = (PROJECT_ROOT / ".env", PROJECT_ROOT / ".env.example")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return response.status == 200
    except OSError:
        return False


def _env_file_keys() -> set[str]:
    keys = set()
    for path in _ENV_FILES:
        if path.is_file():
            for line in path.read_text().splitlines():
                name, sep, _value = line.strip().partition("=")
                if sep and name and not name.startswith("#"):
                    keys.add(name.strip())
    return keys


def rss_kib(pid: int) -> tuple[int, int] | None:
    """(current RSS, peak RSS) of `pid` in KiB, from /proc; None once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        name, _sep, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the nearest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of durations in seconds, as milliseconds."""
    ms = [value * 1000 for value in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else float("nan"),
    }


@dataclass
class Child:
    """A process under test, its output in a log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group (gunicorn's and celery's children too), then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Children left behind by a parent that died first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """The bench's services, and the environment every process under test gets."""

    work_dir: Path
    admin_dsn: str
    database_dsn: str
    clickhouse_url: str
    env: dict[str, str]
    clickhouse: Child | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def spawn(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdin: int | None = None,
        stdout: int | None = None,
    ) -> Child:
        """Start `args` in the project root with the bench environment (plus `env`), in a process
        group of its own; stderr (and stdout unless piped) go to `logs/<name>.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            list(args),
            cwd=PROJECT_ROOT,
            env={**self.env, **(env or {})},
            stdin=stdin,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            start_new_session=True,
            text=True,
        )
        log.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def spawn_role(self, role: str, *args: str, name: str | None = None, **env: str) -> Child:
        """A role started by docker/entrypoint.sh, as in its container."""
        return self.spawn(name or role, [str(ENTRYPOINT), role, *args], env=env)

    def spawn_python(self, name: str, *args: str, **kwargs) -> Child:
        return self.spawn(name, [sys.executable, *args], **kwargs)

    def start_web(
        self, *, name: str = "web", settings_module: str = "app.config.settings"
    ) -> tuple[Child, str]:
        """gunicorn through the entrypoint with the default WEB_* settings, and its URL."""
        port = free_port()
        child = self.spawn_role(
            "web", name=name, WEB_BIND=f"127.0.0.1:{port}", DJANGO_SETTINGS_MODULE=settings_module
        )
        url = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: http_ok(f"{url}/healthz/live"), timeout=60, interval=0.2):
            raise RuntimeError(f"gunicorn did not come up:\n{child.log_tail()}")
        return child, url

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    def close(self, *, keep_data: bool = False) -> None:
        self.stop_all()
        if self.clickhouse:
            self.clickhouse.stop()
            self.clickhouse = None
        if not keep_data:
            drop_database(self.admin_dsn, BENCH_DATABASE)
            shutil.rmtree(self.work_dir / "clickhouse", ignore_errors=True)


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(admin_dsn: str, name: str) -> None:
    drop_database(admin_dsn, name)
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def start_clickhouse(work_dir: Path) -> tuple[Child, str]:
    """The embedded engine behind the development HTTP front, on a free port."""
    data_dir = work_dir / "clickhouse"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "logs" / "clickhouse.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.clickhouse_http",
                "--path",
                str(data_dir),
                "--port",
                "0",
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            text=True,
        )
    first_line = process.stdout.readline().split()
    if first_line[:1] != ["listening"]:
        process.kill()
        raise RuntimeError(f"the ClickHouse devserver did not start: {first_line!r}")
    return Child("clickhouse", process, log_path), f"http://{first_line[1]}/"


def start_stack(*, postgres: str, redis: str, work_dir: Path) -> Stack:
    """Fresh bench services: a new PostgreSQL database and a new ClickHouse data directory.

    `postgres` is a server URL without a database (`postgres://user@host:port`), `redis` a
    server URL without a database number.
    """
    admin_dsn = f"{postgres.rstrip('/')}/postgres"
    database_dsn = f"{postgres.rstrip('/')}/{BENCH_DATABASE}"
    recreate_database(admin_dsn, BENCH_DATABASE)
    clickhouse, clickhouse_url = start_clickhouse(work_dir)
    redis_url = f"{redis.rstrip('/')}/{BENCH_REDIS_DB}"
    probe_dir = work_dir / "probes"
    probe_dir.mkdir(parents=True, exist_ok=True)
    bench_values = {
        # Production settings (DEBUG=false): no query logging, JSON logs, as deployed.
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The bench talks plain HTTP to gunicorn, as the kubelet and an ingress do.
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_dsn,
        "REDIS_URL": redis_url,
        "CLICKHOUSE_URL": clickhouse_url,
        "CLICKHOUSE_DATABASE": BENCH_DATABASE,
        "SENTRY_CONFIG_DSN": "",
        "SENTRY_CONFIG_ENVIRONMENT": "bench",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        # The documented defaults, stated: gunicorn reads WEB_CONCURRENCY itself and cannot
        # take it blank, and the results name the sizes they were measured with.
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "4",
        "WORKER_CONCURRENCY": "2",
        # The registration rate limits (10 a minute per client by default) would turn the
        # load's registrations into 429s: the bench measures the outbox under load, not the
        # limiter. Stated, like the sizes above.
        "REGISTRATION_RATE_PER_CLIENT": "off",
        "REGISTRATION_RATE_GLOBAL": "off",
        "BEAT_SCHEDULE_FILE": str(work_dir / "celerybeat-schedule"),
        "WEB_WORKER_TMP_DIR": str(work_dir),
        "PROBE_DIR": str(probe_dir),
    }
    env = dict(os.environ)
    env.update(dict.fromkeys(_env_file_keys(), ""))
    env.update(bench_values)
    env["DJANGO_SETTINGS_MODULE"] = "app.config.settings"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return Stack(
        work_dir=work_dir,
        admin_dsn=admin_dsn,
        database_dsn=database_dsn,
        clickhouse_url=clickhouse_url,
        env=env,
        clickhouse=clickhouse,
    )


def read_line(child: Child, *, timeout: float) -> str:
    """The next line of a child's piped stdout; raises if it exits or stays silent too long."""
    ready, _, _ = select.select([child.process.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"{child.name}: no output within {timeout}s\n{child.log_tail()}")
    line = child.process.stdout.readline()
    if not line:
        raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
    return line.rstrip("\n")
