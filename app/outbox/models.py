import uuid
from datetime import datetime, time
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now


class EventJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but times keep their microseconds (it cuts them to milliseconds)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime | time):
            return o.isoformat()
        return super().default(o)


class OutboxEvent(models.Model):
    """An event written in the business transaction, waiting to be relayed to ClickHouse.

    A row is deleted once ClickHouse has it. A row that keeps failing is dead-lettered
    (`dead_lettered_at` set): kept, visible in the admin and `outbox_status`, re-queueable.
    """

    id = models.BigAutoField(primary_key=True)
    # Stable across redeliveries: ClickHouse deduplicates on it.
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=255)
    payload = models.JSONField(encoder=EventJSONEncoder)
    metadata_version = models.PositiveIntegerField(default=1)
    # When the business change happened: becomes the event's time in ClickHouse.
    occurred_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    last_error = models.TextField(blank=True, default="")
    dead_lettered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_event"
        indexes = [
            # The claim query: due, not dead, oldest first. Dead rows are outside the index, so
            # many of them never slow the relay down.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="outbox_event_due_idx",
                condition=models.Q(dead_lettered_at__isnull=True),
            ),
            models.Index(
                fields=["dead_lettered_at"],
                name="outbox_event_dead_idx",
                condition=models.Q(dead_lettered_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
