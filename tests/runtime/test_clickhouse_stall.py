"""A ClickHouse that accepts connections and never answers (a hung server, a black-holed
network path): no PostgreSQL transaction of a relay waits on it, registrations go on, liveness
stays green and only readiness reports it; a relay loop that is itself stuck is restarted."""

import subprocess
import sys
import time

import pytest
from django.db import connection

from app.config.env import PROJECT_ROOT
from app.outbox.models import OutboxEvent
from tests.support.http import register
from tests.support.processes import probe_exit_code, wait_until

APPLICATION_NAME = "die-hard-stall-test"
# No relay transaction may stay open longer than this (its claim and its delete take
# milliseconds; before the fix one stayed open for the whole insert).
LONGEST_TRANSACTION = 1.0


def _relay_transactions() -> list[tuple[int, str, float]]:
    """(pid, state, seconds open) of every open transaction of the roles under test."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pid, state, extract(epoch FROM clock_timestamp() - xact_start)
            FROM pg_stat_activity
            WHERE application_name = %s AND xact_start IS NOT NULL
            """,
            [APPLICATION_NAME],
        )
        return [(pid, state, float(age)) for pid, state, age in cursor.fetchall()]


@pytest.fixture
def stall_env(role_env) -> dict[str, str]:
    return {
        **role_env,
        "DATABASE_APPLICATION_NAME": APPLICATION_NAME,
        "CLICKHOUSE_SEND_RECEIVE_TIMEOUT": "3",
        "CLICKHOUSE_INSERT_TIMEOUT": "3",
        "OUTBOX_BACKOFF_BASE": "0.5",
        "OUTBOX_BACKOFF_MAX": "2",
        "OUTBOX_BATCH_SIZE": "50",
    }


@pytest.mark.django_db(transaction=True)
def test_a_clickhouse_that_never_answers_holds_no_transaction_and_no_liveness(
    start_role, stall_env, proxies, event_log
):
    env = stall_env
    start_role("web", env)
    start_role("worker", env)
    start_role("beat", env)
    start_role("relay", env)
    port = int(env["WEB_BIND"].rsplit(":", 1)[1])
    for check in ("worker-ready", "relay-ready", "beat-live"):
        assert wait_until(lambda check=check: probe_exit_code(check, env) == 0, timeout=60), check
    assert wait_until(lambda: register(port, "before@example.com") == "201", timeout=30)

    proxies["clickhouse"].stall()
    outcomes = []
    longest: tuple[int, str, float] = (0, "", 0.0)
    stall_ends = time.monotonic() + 12
    number = 0
    while time.monotonic() < stall_ends:
        number += 1
        outcomes.append(register(port, f"during-{number}@example.com"))
        for transaction in _relay_transactions():
            longest = max(longest, transaction, key=lambda t: t[2])
        assert probe_exit_code("worker-live", env) == 0
        assert probe_exit_code("relay-live", env) == 0
        assert probe_exit_code("beat-live", env) == 0
        time.sleep(0.2)

    # The stall hit work in flight: events were waiting, and the relays tried to send them.
    assert OutboxEvent.objects.count() >= number
    assert outcomes == ["201"] * number
    assert longest[2] < LONGEST_TRANSACTION, longest
    assert probe_exit_code("worker-ready", env) != 0
    assert probe_exit_code("relay-ready", env) != 0

    proxies["clickhouse"].restore()
    assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=60)
    assert wait_until(lambda: probe_exit_code("relay-ready", env) == 0, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_relay_loop_that_is_stuck_fails_its_liveness_probe(role_env):
    # A batch may take up to its lease; this loop's third one never ends.
    env = {**role_env, "PROBE_INTERVAL": "0.5", "OUTBOX_LEASE_SECONDS": "2"}
    stuck = subprocess.Popen(
        [sys.executable, "-m", "tests.support.scripts.relay_stuck"],
        cwd=PROJECT_ROOT,
        env={**env, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "app.config.settings"},
    )
    try:
        # Alive while its loop turns, then stale once the loop hangs (its readiness thread
        # goes on, so only the loop's own heartbeat can tell).
        assert wait_until(lambda: probe_exit_code("relay-live", env) == 0, timeout=30)
        assert wait_until(lambda: probe_exit_code("relay-live", env) == 1, timeout=15)
        assert stuck.poll() is None
    finally:
        stuck.kill()
        stuck.wait()
