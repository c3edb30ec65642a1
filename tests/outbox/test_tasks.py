import json
import socket
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import transaction

from app.config.celery import celery_app
from app.config.env import PROJECT_ROOT
from app.outbox.client import EventLogClient
from app.outbox.tasks import outbox_relay
from tests.support.clickhouse import event_log_count

from .factories import SampleHappened, outbox_rows_create


@pytest.fixture
def outbox_queue():
    """The real Redis list behind the `outbox` queue, emptied first."""
    connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    connection.delete(settings.OUTBOX_QUEUE)
    yield connection
    connection.delete(settings.OUTBOX_QUEUE)
    connection.close()


def _queued_task_names(connection: redis.Redis) -> list[str]:
    messages = connection.lrange(settings.OUTBOX_QUEUE, 0, -1)
    return [json.loads(message)["headers"]["task"] for message in messages]


@pytest.mark.django_db
def test_the_relay_task_drains_the_outbox(event_log):
    outbox_rows_create(1200)

    relayed = outbox_relay.apply().get()

    assert relayed == 1200
    assert event_log_count() == 1200


def test_the_relay_task_goes_to_the_outbox_queue():
    route = celery_app.amqp.router.route({}, "outbox.relay")
    assert route["queue"].name == "outbox"


def test_beat_ticks_the_relay_with_an_expiry_so_ticks_never_pile_up():
    tick = settings.CELERY_BEAT_SCHEDULE["outbox-relay"]
    assert tick["task"] == "outbox.relay"
    assert tick["schedule"] == settings.OUTBOX_RELAY_INTERVAL
    assert tick["options"]["expires"] == settings.OUTBOX_RELAY_INTERVAL


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_published_events_wakes_the_relay_up(outbox_queue):
    with transaction.atomic():
        EventLogClient().publish(SampleHappened(number=1))

    deadline = time.monotonic() + 5
    while not outbox_queue.llen(settings.OUTBOX_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _queued_task_names(outbox_queue)[:1] == ["outbox.relay"]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_no_wake_up(outbox_queue):
    def publish_then_fail():
        with transaction.atomic():
            EventLogClient().publish(SampleHappened(number=1))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        publish_then_fail()

    time.sleep(settings.OUTBOX_WAKEUP_MIN_INTERVAL * 5)
    assert outbox_queue.llen(settings.OUTBOX_QUEUE) == 0


@pytest.fixture
def unresponsive_broker_port():
    """A port that accepts TCP connections and never answers: a hung broker."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_never_fails_or_blocks_a_request(process_env, unresponsive_broker_port):
    broker_url = f"redis://127.0.0.1:{unresponsive_broker_port}/0"
    env = {**process_env, "CELERY_BROKER_URL": broker_url, "LOG_FORMAT": "json"}

    done = subprocess.run(
        [sys.executable, "-m", "tests.support.scripts.register_with_broker_down"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    status_line = next(line for line in done.stdout.splitlines() if line.startswith("status"))
    _, status, _, seconds = status_line.split()
    assert status == "201"
    # A wake-up sent on the request thread would wait out the broker's 5 s socket timeout.
    assert float(seconds) < 3.0
    assert "outbox_wakeup_failed" in done.stdout
