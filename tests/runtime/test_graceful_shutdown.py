import signal
import subprocess
import threading
import time

import pytest

from app.clickhouse.client import clickhouse_client
from app.outbox.models import OutboxEvent
from app.outbox.services import outbox_relay_drain
from app.users.models import User
from tests.outbox.factories import outbox_rows_create
from tests.support.clickhouse import event_log_count
from tests.support.http import register as _register
from tests.support.processes import probe_exit_code, wait_until


@pytest.mark.django_db(transaction=True)
def test_sigterm_to_gunicorn_mid_stream_completes_every_request_and_loses_no_event(
    start_role, role_env, event_log
):
    # Eight clients registering back to back with the production password hasher: several
    # requests are always in flight when SIGTERM lands.
    web = start_role("web", role_env)
    port = int(role_env["WEB_BIND"].rsplit(":", 1)[1])
    assert wait_until(lambda: _register(port, "warm-up@example.com") == "201", timeout=30)

    outcomes: dict[str, str] = {}
    sending = threading.Event()
    sending.set()

    def client(number: int) -> None:
        sent = 0
        while sending.is_set():
            email = f"stream-{number}-{sent}@example.com"
            sent += 1
            outcomes[email] = _register(port, email)
            if outcomes[email] == "refused":
                time.sleep(0.05)

    clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    web.signal(signal.SIGTERM)
    exit_code = web.wait(timeout=60)
    sending.clear()
    for thread in clients:
        thread.join()

    assert exit_code == 0
    completed = {email for email, outcome in outcomes.items() if outcome == "201"}
    registered = set(User.objects.values_list("email", flat=True)) - {"warm-up@example.com"}
    assert completed, outcomes
    # Every request gunicorn took was answered in full (201, or the documented 503 when all
    # of a process's hashing slots were busy, which writes nothing); the only others never
    # reached Django (refused, or reset in the listen backlog), and none of those registered
    # anyone.
    assert registered == completed
    assert all(
        outcome in ("201", "503", "refused") or outcome.startswith("broken")
        for outcome in outcomes.values()
    ), outcomes

    outbox_relay_drain()
    assert event_log_count(event_type="user_created") == len(completed) + 1


@pytest.mark.django_db(transaction=True)
def test_sigterm_and_sigkill_to_workers_mid_backlog_lose_nothing_and_count_nothing_twice(
    start_role, role_env, event_log
):
    total = 60_000
    outbox_rows_create(total)
    env = {
        **role_env,
        "OUTBOX_BATCH_SIZE": "500",
        "OUTBOX_RELAY_INTERVAL": "0.5",
        # Far longer than the test: a worker that stops fast stopped between batches.
        "OUTBOX_RELAY_TIME_BUDGET": "300",
        # The killed worker's batch is taken over once its lease runs out: a short one here.
        "OUTBOX_LEASE_SECONDS": "10",
    }
    killed = start_role("worker", env)
    stopped = start_role("worker", env)
    start_role("beat", env)

    assert wait_until(lambda: event_log_count() >= 5_000, timeout=90, interval=0.1)
    killed.kill_container()
    stopped.signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    try:
        exit_code = stopped.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop within 60 s:\n{stopped.log()[-6000:]}")
    assert exit_code == 0, stopped.log()[-3000:]
    assert time.monotonic() - stopped_at < 30
    relayed_before_restart = event_log_count()
    assert 0 < relayed_before_restart < total, "the backlog must still be partly pending here"

    replacement = start_role("worker", env)  # the replacement pod
    assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=180, interval=0.5), (
        replacement.log()[-5000:]
    )

    # Plain count(), no FINAL: the killed worker's batch was re-sent under its token.
    assert clickhouse_client().query(
        f"SELECT count(), uniqExact(event_id) FROM {event_log}"
    ).first_row == (total, total)
    # It stopped between two batches, not by waiting out the relay's time budget.
    assert "outbox_relay_stopping" in stopped.log()


@pytest.mark.django_db(transaction=True)
def test_beat_exits_cleanly_on_sigterm(start_role, role_env):
    beat = start_role("beat", role_env)
    assert wait_until(lambda: probe_exit_code("beat-live", role_env) == 0, timeout=60)

    beat.signal(signal.SIGTERM)

    assert beat.wait(timeout=30) == 0
