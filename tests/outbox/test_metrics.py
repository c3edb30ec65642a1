import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from app.outbox.batches import batch_claim
from app.outbox.metrics import OutboxBacklogCollector, _cache_key
from app.outbox.models import OutboxEvent
from app.outbox.selectors import outbox_backlog

from .factories import outbox_rows_create


@pytest.fixture
def shared_cache():
    """The backlog measurement shared through Redis: none at the start of the test."""
    keys = [_cache_key("turn"), _cache_key("measurement")]
    cache.delete_many(keys)
    yield
    cache.delete_many(keys)


def _gauges(collector: OutboxBacklogCollector) -> dict[str, float]:
    return {family.name: family.samples[0].value for family in collector.collect()}


def _backlog_with_every_kind_of_row() -> None:
    """10 pending rows, of which 4 are in a live batch; 2 dead-lettered rows."""
    outbox_rows_create(10)
    assert batch_claim(limit=4) is not None
    dead = outbox_rows_create(2, event_type="rejected_twice")
    OutboxEvent.objects.filter(id__in=[row.id for row in dead]).update(
        dead_lettered_at=timezone.now()
    )


@pytest.mark.django_db
def test_the_backlog_counts_pending_due_and_dead_rows_and_finds_the_oldest():
    _backlog_with_every_kind_of_row()
    OutboxEvent.objects.filter(event_type="sample_happened").update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )

    backlog = outbox_backlog()

    assert (backlog.pending, backlog.due, backlog.dead) == (10, 6, 2)
    assert backlog.oldest_pending_since is not None
    age = (timezone.now() - backlog.oldest_pending_since).total_seconds()
    assert 300 <= age < 310


@pytest.mark.django_db
def test_an_empty_outbox_has_no_oldest_row():
    assert outbox_backlog().oldest_pending_since is None


@pytest.mark.django_db
def test_the_oldest_pending_row_and_the_dead_rows_are_found_through_their_indexes():
    pending = OutboxEvent.objects.filter(dead_lettered_at__isnull=True)
    with connection.cursor() as cursor:
        # Tiny tables are read whole whatever indexes exist: ask whether an index can serve.
        cursor.execute("SET enable_seqscan = off")
    try:
        oldest_plan = (
            pending.order_by("next_attempt_at", "id").values("next_attempt_at")[:1].explain()
        )
        dead_plan = OutboxEvent.objects.filter(dead_lettered_at__isnull=False).explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")

    assert "outbox_event_due_idx" in oldest_plan
    assert "Sort" not in oldest_plan  # the first entry of the index, not a sort of all rows
    assert "outbox_event_dead_idx" in dead_plan


@pytest.mark.django_db(transaction=True)
def test_one_process_per_interval_queries_postgresql_the_others_read_its_measurement(
    shared_cache, django_assert_num_queries
):
    _backlog_with_every_kind_of_row()
    first, second = (OutboxBacklogCollector(interval=60) for _ in range(2))

    first.refresh()  # takes the interval's turn and queries PostgreSQL
    with django_assert_num_queries(0):
        second.refresh()  # within the same interval: reads what the first measured

    assert first.latest == second.latest  # the same measurement, at the same moment
    gauges = _gauges(second)
    assert gauges["die_hard_outbox_pending_events"] == 10
    assert gauges["die_hard_outbox_due_events"] == 6
    assert gauges["die_hard_outbox_dead_lettered_events"] == 2
    assert gauges["die_hard_outbox_oldest_pending_age_seconds"] > 0


@pytest.mark.django_db(transaction=True)
def test_the_oldest_age_grows_between_measurements_and_is_zero_when_nothing_waits(shared_cache):
    collector = OutboxBacklogCollector(interval=60)
    collector.refresh()
    assert _gauges(collector)["die_hard_outbox_oldest_pending_age_seconds"] == 0

    cache.delete(_cache_key("turn"))
    outbox_rows_create(1)
    collector.refresh()
    first = _gauges(collector)["die_hard_outbox_oldest_pending_age_seconds"]
    time.sleep(0.5)

    assert _gauges(collector)["die_hard_outbox_oldest_pending_age_seconds"] >= first + 0.5


@pytest.mark.django_db(transaction=True)
def test_a_stale_measurement_is_not_exported(shared_cache):
    collector = OutboxBacklogCollector(interval=0.2)
    collector.refresh()
    assert "die_hard_outbox_pending_events" in _gauges(collector)

    time.sleep(0.7)  # more than three intervals without a refresh (Redis or PostgreSQL away)

    assert _gauges(collector) == {}
