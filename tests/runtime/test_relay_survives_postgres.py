"""The relay loop (`manage.py outbox_relay`, the relay role) lives through PostgreSQL going
away: it logs, backs off and goes on relaying once PostgreSQL is back, instead of exiting into a
CrashLoopBackOff."""

import time

import pytest

from app.outbox.models import OutboxEvent
from tests.outbox.factories import outbox_rows_create
from tests.support.processes import wait_until


@pytest.mark.django_db(transaction=True)
def test_the_relay_loop_survives_a_postgresql_outage(start_role, role_env, proxies, event_log):
    env = {**role_env, "OUTBOX_RELAY_INTERVAL": "0.2", "OUTBOX_BACKOFF_BASE": "0.2"}
    relay = start_role("relay", env)
    outbox_rows_create(20)
    assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=60), relay.log()

    proxies["postgres"].cut()
    # The loop's next claims fail while PostgreSQL is away: it must keep running.
    assert wait_until(lambda: "outbox_relay_database_error" in relay.log(), timeout=30)
    time.sleep(2)
    assert relay.process.poll() is None, relay.log()[-3000:]

    proxies["postgres"].restore()
    outbox_rows_create(10)
    assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=60), relay.log()[-3000:]
    assert relay.process.poll() is None
    relay.signal(15)
    assert relay.wait(timeout=30) == 0
