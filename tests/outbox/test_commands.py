import json
import signal
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from app.config.env import PROJECT_ROOT
from app.outbox.models import OutboxEvent
from tests.support.clickhouse import event_log_count
from tests.support.processes import probe_exit_code, wait_until

from .factories import outbox_rows_create


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def one_dead_row(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    (row,) = outbox_rows_create(1, event_type="Bad Type")
    call_command("outbox_relay", "--once")
    row.refresh_from_db()
    assert row.dead_lettered_at is not None
    return row


@pytest.mark.django_db
def test_outbox_status_reports_pending_dead_age_and_attempts(one_dead_row):
    outbox_rows_create(3)

    report = json.loads(_call("outbox_status", "--json"))

    assert report["pending"] == 3
    assert report["due"] == 3
    assert report["dead"] == 1
    assert report["oldest_pending_age_seconds"] >= 2  # the factory backdates its rows
    assert report["attempts_histogram"] == {"0": 3, "1": 1}
    text = _call("outbox_status")
    assert "pending: 3 (3 due, 0 retrying)" in text
    assert "dead-lettered: 1" in text


@pytest.mark.django_db
def test_outbox_requeue_needs_a_filter_and_requeues_what_matches(one_dead_row):
    with pytest.raises(CommandError, match="--all"):
        call_command("outbox_requeue")
    assert "re-queued 0" in _call("outbox_requeue", "--event-type", "other_type")

    assert "re-queued 1" in _call("outbox_requeue", "--event-id", str(one_dead_row.event_id))
    one_dead_row.refresh_from_db()
    assert one_dead_row.dead_lettered_at is None


@pytest.mark.django_db
def test_outbox_relay_once_drains_the_outbox(event_log):
    outbox_rows_create(50)

    call_command("outbox_relay", "--once", "--batch-size", "20")

    assert not OutboxEvent.objects.exists()
    assert event_log_count() == 50


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_relay_loop_relays_and_stops_cleanly_on_a_signal(
    event_log, process_env, stop_signal, tmp_path
):
    process_env = {**process_env, "PROBE_DIR": str(tmp_path), "PROBE_INTERVAL": "1"}
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "outbox_relay", "--interval", "0.2"],
        cwd=PROJECT_ROOT,
        env=process_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        outbox_rows_create(30)
        assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=30)
        for check in ("relay-live", "relay-ready"):
            assert wait_until(
                lambda check=check: probe_exit_code(check, process_env) == 0, timeout=10
            ), check

        relay.send_signal(stop_signal)
        relay.wait(timeout=10)
    finally:
        relay.kill()
    assert relay.returncode == 0
    assert f"{stop_signal.name}, stopping" in relay.stderr.read()
    assert event_log_count() == 30


@pytest.mark.django_db
def test_outbox_status_shows_the_breaker_and_the_last_failure(event_log, settings):
    settings.CLICKHOUSE_URL = "http://127.0.0.1:1/"  # nothing listens there
    settings.OUTBOX_BACKOFF_BASE = 60
    outbox_rows_create(2)
    call_command("outbox_relay", "--once")

    report = json.loads(_call("outbox_status", "--json"))

    assert report["pending"] == 2
    assert report["due"] == 2  # the batch is owed, and any relay may retry it now
    assert report["relay"]["breaker"] == "open"
    assert report["relay"]["consecutive_failures"] == 1
    assert report["relay"]["last_failure_blame"] == "infrastructure"
    assert "OperationalError" in report["relay"]["last_failure"]
    text = _call("outbox_status")
    assert "relay breaker: open until" in text
    assert "[infrastructure] OperationalError" in text
