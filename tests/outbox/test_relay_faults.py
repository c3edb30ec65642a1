"""The relay across faults forced at exact points: a ClickHouse outage longer than the whole
backoff schedule, a reply lost after ClickHouse stored the batch, a systemic data error.

Every ClickHouse call of the relay goes through a proxy the test cuts or makes lose replies;
counts are plain `count()` (no FINAL), which sees every physical duplicate.
"""

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from app.clickhouse.client import clickhouse_client
from app.outbox.models import OutboxEvent
from app.outbox.services import outbox_relay_batch, outbox_relay_drain, outbox_requeue
from tests.support.clickhouse import event_log_plain_count
from tests.support.fixtures import use_clickhouse
from tests.support.proxy import CuttableProxy

from .factories import outbox_rows_create

# An insert streams its rows in a chunked body; clickhouse-connect's other requests (the
# DESCRIBE it runs before an insert, pings, queries) have a Content-Length.
INSERT_MARKER = b"Transfer-Encoding: chunked"


@pytest.fixture
def clickhouse_proxy(clickhouse_url) -> Iterator[CuttableProxy]:
    """The suite's ClickHouse, reached by this process through a proxy the test controls."""
    target = urlsplit(clickhouse_url)
    proxy = CuttableProxy(target.hostname, target.port)
    use_clickhouse(f"http://127.0.0.1:{proxy.port}/")
    yield proxy
    proxy.close()
    use_clickhouse(clickhouse_url)


@pytest.fixture
def fast_backoff(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE = 0.02
    settings.OUTBOX_BACKOFF_MAX = 0.1
    return settings


def _distinct_count(table: str) -> int:
    query = f"SELECT uniqExact(event_id) FROM {table}"
    return int(clickhouse_client().query(query).first_row[0])


def _drain_until(condition: Callable[[], bool], *, timeout: float) -> None:
    """Relay as beat and the workers would (a drain per tick) until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the relay did not get there in time"
        outbox_relay_drain()
        time.sleep(0.02)


def _dead_lettered() -> int:
    return OutboxEvent.objects.filter(dead_lettered_at__isnull=False).count()


@pytest.mark.django_db
def test_an_outage_longer_than_the_backoff_schedule_dead_letters_nothing(
    event_log, clickhouse_proxy, fast_backoff
):
    outbox_rows_create(20)
    # Every retry of the schedule, and then some: attempts alone would dead-letter everything.
    schedule = sum(
        min(fast_backoff.OUTBOX_BACKOFF_BASE * 2**attempt, fast_backoff.OUTBOX_BACKOFF_MAX)
        for attempt in range(fast_backoff.OUTBOX_MAX_ATTEMPTS)
    )
    clickhouse_proxy.cut()

    outage_ends = time.monotonic() + max(10 * schedule, 2.0)
    drains = 0
    while time.monotonic() < outage_ends:
        outbox_relay_drain()
        drains += 1
        time.sleep(0.02)

    assert drains > 20
    assert _dead_lettered() == 0
    assert OutboxEvent.objects.count() == 20

    clickhouse_proxy.restore()
    _drain_until(lambda: not OutboxEvent.objects.exists(), timeout=30)

    assert event_log_plain_count() == 20
    assert _distinct_count(event_log) == 20


@pytest.mark.django_db
def test_a_reply_lost_after_clickhouse_stored_the_batch_is_retried_exactly(
    event_log, clickhouse_proxy, fast_backoff
):
    outbox_rows_create(50)
    clickhouse_proxy.drop_replies(10, marker=INSERT_MARKER)

    first = outbox_relay_drain()

    # The fault hit work in flight: ClickHouse stored the batch, the relay never heard.
    assert first.relayed == 0
    assert clickhouse_proxy.replies_dropped >= 1
    assert event_log_plain_count() == 50
    assert OutboxEvent.objects.count() == 50

    clickhouse_proxy.drop_replies(0, marker=INSERT_MARKER)
    _drain_until(lambda: not OutboxEvent.objects.exists(), timeout=30)

    assert event_log_plain_count() == 50
    assert _distinct_count(event_log) == 50
    assert _dead_lettered() == 0


@pytest.fixture
def nothing_passes(event_log) -> Iterator[Callable[[], None]]:
    """A constraint no row meets (schema drift that blames every row); yields its removal."""
    client = clickhouse_client()
    client.command(f"ALTER TABLE {event_log} ADD CONSTRAINT nothing_passes CHECK 0")

    def lift() -> None:
        client.command(f"ALTER TABLE {event_log} DROP CONSTRAINT IF EXISTS nothing_passes")

    yield lift
    lift()


@pytest.mark.django_db
def test_a_systemic_data_error_costs_bounded_inserts_and_requeue_delivers_once(
    event_log, nothing_passes, fast_backoff
):
    fast_backoff.OUTBOX_MAX_ATTEMPTS = 2
    outbox_rows_create(1000)

    inserts_per_batch = []
    deadline = time.monotonic() + 30
    while _dead_lettered() < 1000:
        assert time.monotonic() < deadline, f"{_dead_lettered()} of 1000 dead-lettered"
        batch = outbox_relay_batch(batch_size=1000)
        if batch.claimed:
            inserts_per_batch.append(batch.inserts)
        time.sleep(0.02)

    # Whole batch, then both halves failing alike: the error is systemic, stop there.
    assert inserts_per_batch
    assert max(inserts_per_batch) <= 3, inserts_per_batch
    assert all("VIOLATED_CONSTRAINT" in error for error in _last_errors())
    assert event_log_plain_count() == 0

    nothing_passes()
    assert outbox_requeue(all_dead=True) == 1000
    _drain_until(lambda: not OutboxEvent.objects.exists(), timeout=30)

    assert event_log_plain_count() == 1000
    assert _distinct_count(event_log) == 1000


def _last_errors() -> set[str]:
    return set(OutboxEvent.objects.values_list("last_error", flat=True))
