from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from app.outbox.events import Event
from app.outbox.models import OutboxEvent


@dataclass(frozen=True, kw_only=True)
class SampleHappened(Event):
    number: int


def outbox_rows_create(count: int, *, event_type: str = "sample_happened") -> list[OutboxEvent]:
    """`count` pending outbox rows, oldest first, written the way EventLogClient writes them."""
    start = timezone.now() - timedelta(seconds=count)
    return OutboxEvent.objects.bulk_create(
        OutboxEvent(
            event_type=event_type,
            payload={"number": number},
            occurred_at=start + timedelta(seconds=number),
        )
        for number in range(count)
    )
