from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.db import transaction

from app.clickhouse.client import clickhouse_client
from app.outbox.client import EventLogClient
from app.outbox.events import Event
from app.outbox.models import OutboxEvent
from app.outbox.services import outbox_relay_drain
from tests.support.clickhouse import event_log_count


@dataclass(frozen=True, kw_only=True)
class InvoicePaid(Event):
    invoice_id: int
    paid_at: datetime


@dataclass(frozen=True, kw_only=True)
class LegacyEvent(Event):
    event_type = "legacy_signup"
    metadata_version = 3
    source: str


class _Rollback(Exception):
    pass


def test_event_type_defaults_to_the_class_name_in_snake_case():
    assert InvoicePaid.event_type == "invoice_paid"
    assert LegacyEvent.event_type == "legacy_signup"


def test_an_event_type_that_is_not_snake_case_is_refused():
    with pytest.raises(TypeError, match="snake_case"):

        @dataclass(frozen=True)
        class Broken(Event):
            event_type = "Not Snake"


@pytest.mark.django_db
def test_publish_writes_the_context_as_json_with_type_and_version():
    paid_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    EventLogClient().publish(InvoicePaid(invoice_id=7, paid_at=paid_at), LegacyEvent(source="x"))

    rows = {row.event_type: row for row in OutboxEvent.objects.all()}
    assert rows["invoice_paid"].payload == {
        "invoice_id": 7,
        "paid_at": "2026-01-02T03:04:05.678901+00:00",
    }
    assert rows["invoice_paid"].metadata_version == 1
    assert rows["legacy_signup"].payload == {"source": "x"}
    assert rows["legacy_signup"].metadata_version == 3
    assert rows["invoice_paid"].event_id != rows["legacy_signup"].event_id


@pytest.mark.django_db(transaction=True)
def test_rollback_of_the_business_transaction_publishes_nothing(event_log):
    def publish_then_fail():
        with transaction.atomic():
            EventLogClient().publish(LegacyEvent(source="rolled-back"))
            raise _Rollback

    with pytest.raises(_Rollback):
        publish_then_fail()

    assert not OutboxEvent.objects.exists()
    outbox_relay_drain()
    assert event_log_count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_commit_leads_to_exactly_one_clickhouse_row_at_the_original_time(event_log):
    occurred_at = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    with transaction.atomic():
        (row,) = EventLogClient().publish(LegacyEvent(source="committed"), occurred_at=occurred_at)

    outbox_relay_drain()

    stored = clickhouse_client().query(
        f"SELECT event_id, event_type, event_date_time, event_context, metadata_version "
        f"FROM {event_log}"
    )
    assert stored.result_rows == [
        (
            row.event_id,
            "legacy_signup",
            occurred_at.replace(tzinfo=None),
            '{"source": "committed"}',
            3,
        )
    ]
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_publishing_nothing_writes_nothing():
    assert EventLogClient().publish() == []
    assert not OutboxEvent.objects.exists()
