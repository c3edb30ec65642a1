import subprocess
import uuid

import psycopg
import pytest
from django.db import connection

from app.clickhouse.client import clickhouse_client
from tests.support.processes import probe_exit_code, wait_until

from .conftest import ENTRYPOINT, PROJECT_ROOT


@pytest.fixture
def fresh_databases(role_env, proxies):
    """An empty PostgreSQL database and an unused ClickHouse database name."""
    name = f"die_hard_migrate_{uuid.uuid4().hex[:8]}"
    admin = connection.settings_dict
    host, port = admin["HOST"] or "127.0.0.1", admin["PORT"] or 5432
    dsn = f"host={host} port={port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as server:
        server.execute(f"CREATE DATABASE {name}")
    env = {
        **role_env,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxies['postgres'].port}/{name}",
        "CLICKHOUSE_DATABASE": name,
    }
    yield env
    with psycopg.connect(dsn, autocommit=True) as server:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    clickhouse_client().command(f"DROP DATABASE IF EXISTS {name}")


def _migrate(env, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ENTRYPOINT), "migrate", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.django_db
def test_two_migrate_runs_at_once_both_succeed_and_set_up_both_databases(fresh_databases):
    runs = [_migrate(fresh_databases), _migrate(fresh_databases)]
    outputs = [run.communicate(timeout=180)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    database = fresh_databases["CLICKHOUSE_DATABASE"]
    tables = (
        clickhouse_client()
        .query(
            "SELECT name FROM system.tables WHERE database = %(d)s ORDER BY name",
            parameters={"d": database},
        )
        .result_columns[0]
    )
    assert list(tables) == ["clickhouse_migrations", "event_log"]
    # And a third run has nothing left to do.
    again = _migrate(fresh_databases)
    output = again.communicate(timeout=120)[0]
    assert again.returncode == 0
    assert "No migrations to apply." in output
    assert "ClickHouse: applied 0 migration(s)" in output


@pytest.mark.django_db
def test_migrate_fails_clearly_when_the_database_never_comes(role_env, proxies):
    proxies["postgres"].cut()

    run = _migrate(role_env, "--timeout", "2")
    output = run.communicate(timeout=60)[0]

    assert run.returncode != 0
    assert "cannot migrate: database did not answer within 2s" in output


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_before_redis_waits_then_starts(start_role, role_env, proxies):
    proxies["redis"].cut()

    worker = start_role("worker", role_env)
    assert wait_until(lambda: "waiting_for_dependency" in worker.log(), timeout=30)
    assert '"dependency": "broker"' in worker.log()
    assert worker.process.poll() is None  # waiting, not crash-looping

    proxies["redis"].restore()
    assert wait_until(lambda: probe_exit_code("worker-ready", role_env) == 0, timeout=60), (
        worker.log()
    )
