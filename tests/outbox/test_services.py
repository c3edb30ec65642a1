import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from app.clickhouse.client import clickhouse_client
from app.config.env import PROJECT_ROOT
from app.outbox.models import OutboxBatch, OutboxEvent
from app.outbox.services import (
    outbox_relay_batch,
    outbox_relay_drain,
    outbox_requeue,
)
from tests.support.clickhouse import event_log_count
from tests.support.fixtures import use_clickhouse
from tests.support.processes import free_port

from .factories import outbox_rows_create


def _plain_count(table: str) -> int:
    """Rows physically in ClickHouse, duplicates included (no FINAL)."""
    return clickhouse_client().query(f"SELECT count() FROM {table}").first_row[0]


@pytest.fixture
def insert_counter(monkeypatch):
    """Counts the relay's ClickHouse inserts; every insert still goes to ClickHouse unchanged."""
    client = clickhouse_client(timeout=django_settings.CLICKHOUSE_INSERT_TIMEOUT)
    real_insert = client.insert
    inserts: list[int] = []

    def counting_insert(table, data, *args, **kwargs):
        inserts.append(len(data))
        return real_insert(table, data, *args, **kwargs)

    monkeypatch.setattr(client, "insert", counting_insert)
    return inserts


@pytest.mark.django_db
def test_the_relay_makes_one_clickhouse_insert_per_batch(event_log, insert_counter):
    outbox_rows_create(2500)

    drained = outbox_relay_drain(batch_size=1000)

    assert insert_counter == [1000, 1000, 500]
    assert drained.relayed == 2500
    assert event_log_count() == 2500
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_the_oldest_due_rows_go_first_and_rows_in_backoff_wait(event_log):
    rows = outbox_rows_create(5)
    OutboxEvent.objects.filter(pk=rows[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    first = outbox_relay_batch(batch_size=2)

    assert first.relayed == 2
    remaining = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert remaining == {rows[0].pk, rows[3].pk, rows[4].pk}
    outbox_relay_drain()
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [rows[0].pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_deliver_10000_events_exactly_once(event_log):
    outbox_rows_create(10_000)
    relays = 4
    start_together = threading.Barrier(relays)
    relayed_by_relay = [0] * relays
    errors: list[BaseException] = []

    def relay(index: int) -> None:
        try:
            start_together.wait()
            relayed_by_relay[index] = outbox_relay_drain(batch_size=250, time_budget=120).relayed
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()  # each relay thread had its own PostgreSQL connection

    threads = [threading.Thread(target=relay, args=(index,)) for index in range(relays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(relayed_by_relay) == 10_000
    assert sum(1 for relayed in relayed_by_relay if relayed) >= 2, relayed_by_relay
    assert _plain_count(event_log) == 10_000  # not even a duplicate before merges
    assert (
        clickhouse_client().query(f"SELECT uniqExact(event_id) FROM {event_log}").first_row[0]
        == 10_000
    )
    assert not OutboxEvent.objects.exists()


def _kill_a_relay_between_insert_and_delete(process_env, event_log) -> None:
    """A relay process SIGKILLed right after ClickHouse stored its batch of 10, before
    PostgreSQL recorded it; its lease on the batch runs out after one second."""
    dying = subprocess.run(
        [sys.executable, "-m", "tests.support.scripts.relay_killed_at", "_settle"],
        cwd=PROJECT_ROOT,
        env={**process_env, "OUTBOX_LEASE_SECONDS": "1"},
        check=False,
    )
    assert dying.returncode == -9
    assert _plain_count(event_log) == 10


def _drain_until_empty(*, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while OutboxEvent.objects.exists():
        assert time.monotonic() < deadline, "the relay did not empty the outbox in time"
        outbox_relay_drain()
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_between_insert_and_delete_is_redelivered_and_counted_once(
    event_log, process_env
):
    outbox_rows_create(10)

    _kill_a_relay_between_insert_and_delete(process_env, event_log)

    assert OutboxEvent.objects.count() == 10  # nothing recorded: the batch is still owed

    # The same batch again: ClickHouse drops it by its deduplication token.
    _drain_until_empty()
    assert _plain_count(event_log) == 10
    assert event_log_count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_after_its_insert_while_new_events_arrive_counts_each_once(
    event_log, process_env
):
    outbox_rows_create(10)
    _kill_a_relay_between_insert_and_delete(process_env, event_log)
    outbox_rows_create(5, event_type="later_event")

    _drain_until_empty()

    # Plain count(), no FINAL: the killed relay's batch was re-sent whole, under its token.
    assert clickhouse_client().query(
        f"SELECT count(), uniqExact(event_id) FROM {event_log}"
    ).first_row == (15, 15)


@pytest.mark.django_db
def test_a_poison_event_is_dead_lettered_alone_and_can_be_requeued(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    outbox_rows_create(20)
    # A row no current code can publish (an older release, a hand edit): ClickHouse's
    # constraint on event_type rejects it.
    (poison,) = outbox_rows_create(1, event_type="Not A Valid Type")
    outbox_rows_create(20, event_type="after_the_poison")

    drained = outbox_relay_drain()

    assert drained.relayed == 40
    assert drained.dead_lettered == 1
    assert event_log_count() == 40
    poison.refresh_from_db()
    assert poison.dead_lettered_at is not None
    assert poison.attempts == 1
    assert "VIOLATED_CONSTRAINT" in poison.last_error

    assert outbox_requeue(event_ids=[str(poison.event_id)]) == 1
    poison.refresh_from_db()
    assert poison.dead_lettered_at is None
    assert poison.attempts == 0
    assert poison.next_attempt_at <= timezone.now()


@pytest.mark.django_db
def test_requeue_without_a_filter_requeues_nothing(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    outbox_rows_create(1, event_type="Bad Type")
    outbox_relay_drain()

    assert outbox_requeue() == 0
    assert outbox_requeue(all_dead=True) == 1


@pytest.mark.django_db
def test_rejected_attempts_back_off_exponentially_then_dead_letter(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE = 10
    (row,) = outbox_rows_create(1, event_type="Bad Type")

    delays = []
    for _attempt in range(2):
        before = timezone.now()
        assert outbox_relay_batch().failed == 1
        (batch,) = OutboxBatch.objects.all()
        delays.append((batch.leased_until - before).total_seconds())
        # Its retry time, brought forward so the next attempt is now.
        OutboxBatch.objects.update(leased_until=timezone.now())
    assert outbox_relay_batch().dead_lettered == 1

    # min(10 * 2**(attempts - 1), cap) seconds, times a jitter factor in [0.5, 1]
    assert 5 <= delays[0] <= 10.5
    assert 10 <= delays[1] <= 20.5
    row.refresh_from_db()
    assert row.attempts == 3
    assert row.dead_lettered_at is not None
    assert "VIOLATED_CONSTRAINT" in row.last_error
    assert row.batch_id == batch.id  # it keeps its batch's identity
    assert not OutboxBatch.objects.exists()


@pytest.mark.django_db
def test_drain_stops_between_batches_when_asked(event_log):
    outbox_rows_create(30)
    batches_done = []

    def stop_after_two() -> bool:
        batches_done.append(None)
        return len(batches_done) > 2

    drained = outbox_relay_drain(batch_size=10, should_stop=stop_after_two)

    assert drained.batches == 2
    assert OutboxEvent.objects.count() == 10


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _relay_metrics() -> dict[str, float]:
    return {
        "relayed": _metric("die_hard_outbox_relayed_events_total"),
        "batches": _metric("die_hard_outbox_relayed_batches_total"),
        "durations": _metric("die_hard_outbox_batch_duration_seconds_count"),
        "lags": _metric("die_hard_outbox_relay_lag_seconds_count"),
        "lag_sum": _metric("die_hard_outbox_relay_lag_seconds_sum"),
        "rejected": _metric("die_hard_outbox_relay_failures_total", reason="rejected"),
        "unavailable": _metric("die_hard_outbox_relay_failures_total", reason="unavailable"),
        "dead_letters": _metric("die_hard_outbox_dead_letters_total"),
    }


def _increase(before: dict[str, float]) -> dict[str, float]:
    return {name: value - before[name] for name, value in _relay_metrics().items()}


@pytest.mark.django_db
def test_a_relayed_batch_counts_its_events_and_times_itself_from_the_oldest_event(event_log):
    outbox_rows_create(30)  # the oldest created 30 s ago
    before = _relay_metrics()

    assert outbox_relay_batch().relayed == 30

    increase = _increase(before)
    assert {name: increase[name] for name in ("relayed", "batches", "durations", "lags")} == {
        "relayed": 30,
        "batches": 1,
        "durations": 1,
        "lags": 1,
    }
    assert 30 <= increase["lag_sum"] < 60
    assert increase["rejected"] == increase["unavailable"] == increase["dead_letters"] == 0


@pytest.mark.django_db
def test_rejected_data_counts_a_rejected_attempt_and_its_dead_letters(event_log, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    outbox_rows_create(5)
    outbox_rows_create(1, event_type="Not A Valid Type")
    before = _relay_metrics()

    assert outbox_relay_batch().dead_lettered == 1

    increase = _increase(before)
    assert (increase["relayed"], increase["rejected"], increase["dead_letters"]) == (5, 1, 1)
    assert increase["unavailable"] == 0


@pytest.mark.django_db
def test_clickhouse_unreachable_counts_an_unavailable_attempt_and_opens_the_breaker(
    event_log, clickhouse_url
):
    outbox_rows_create(5)
    before = _relay_metrics()
    use_clickhouse(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    try:
        assert outbox_relay_batch().infrastructure_error
        assert outbox_relay_batch().backing_off  # the breaker is open: no second attempt
    finally:
        use_clickhouse(clickhouse_url)

    increase = _increase(before)
    assert (increase["unavailable"], increase["relayed"], increase["batches"]) == (1, 0, 0)
    assert _metric("die_hard_outbox_breaker_state") == 2
