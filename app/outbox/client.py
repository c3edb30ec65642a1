from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from .events import Event
from .models import OutboxEvent
from .wakeup import relay_wakeup_after_commit


class EventLogClient:
    """The one public way to publish events.

    `publish` writes outbox rows in the caller's transaction (or in its own when there is none):
    a rollback publishes nothing, a commit guarantees delivery to ClickHouse. It does no
    ClickHouse or broker I/O; after the commit a relay wake-up is sent from a background thread.
    """

    def __init__(self, *, using: str = DEFAULT_DB_ALIAS):
        self.using = using

    def publish(self, *events: Event, occurred_at: datetime | None = None) -> list[OutboxEvent]:
        occurred_at = occurred_at or timezone.now()
        rows = [
            OutboxEvent(
                event_type=event.event_type,
                payload=event.context(),
                metadata_version=event.metadata_version,
                occurred_at=occurred_at,
            )
            for event in events
        ]
        # No savepoint: inside the caller's transaction an event that cannot be written must
        # fail that whole transaction, and it saves two round trips per publish.
        with transaction.atomic(using=self.using, savepoint=False):
            OutboxEvent.objects.using(self.using).bulk_create(rows)
            relay_wakeup_after_commit(using=self.using)
        return rows
