import uuid
from datetime import datetime, time
from typing import Any

from django.contrib.postgres.fields import ArrayField
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

    A row is deleted once ClickHouse has it. While a relay owns it, `batch_id` names its batch
    (an `OutboxBatch`, the identity it is sent under). A row whose data ClickHouse keeps
    rejecting is dead-lettered (`dead_lettered_at` set): kept with its batch identity, visible
    in the admin and `outbox_status`, re-queueable.
    """

    id = models.BigAutoField(primary_key=True)
    # Stable across redeliveries: ClickHouse deduplicates on it.
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=255)
    payload = models.JSONField(encoder=EventJSONEncoder)
    metadata_version = models.PositiveIntegerField(default=1)
    # When the business change happened: becomes the event's time in ClickHouse.
    occurred_at = models.DateTimeField()
    # The batch this row is sent in, from its claim until it is deleted (dead letters keep it).
    # Deliberately not indexed: setting it is then a heap-only update (the table's fillfactor
    # leaves room), which keeps the claim nearly as cheap as a plain DELETE ... RETURNING.
    batch_id = models.UUIDField(null=True, blank=True, editable=False)
    # Rejected attempts of its batch (ClickHouse refused the data); never infrastructure failures.
    attempts = models.PositiveIntegerField(default=0)
    # When the row was published: its place in line.
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


class OutboxBatch(models.Model):
    """A batch owed to ClickHouse: its rows, its owner's lease, and its identity.

    The id is the batch's `insert_deduplication_token`. It is committed before the insert and
    the rows are deleted only after it, so a relay that dies, hangs or loses ClickHouse's reply
    leaves the batch here; once `leased_until` has passed any relay takes it over whole and
    sends the identical rows under the identical token, which ClickHouse drops if it already
    stored them. A batch whose data ClickHouse rejected waits here for its retry (`leased_until`
    is then the retry time); once its rows are dead-lettered it is gone, and the rows keep its id.
    """

    id = models.UUIDField(primary_key=True)
    # The outbox rows of the batch (OutboxEvent ids, ascending): fetched by id, never searched.
    outbox_ids = ArrayField(models.BigIntegerField())
    # Until then its relay owns it; after that (or at once, after an infrastructure failure)
    # any relay may take it over.
    leased_until = models.DateTimeField()
    attempts = models.PositiveIntegerField(db_default=0)
    last_error = models.TextField(blank=True, db_default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "outbox_batch"
        indexes = [models.Index(fields=["leased_until"], name="outbox_batch_lease_idx")]

    def __str__(self) -> str:
        return f"batch {self.id} ({len(self.outbox_ids)} events)"


class OutboxRelayHealth(models.Model):
    """One row: what the relays last saw, for operators (`outbox_status`, /healthz/status).

    Written only when something changes (a failure, the first success after failures), never
    per batch. Each relay process has its own circuit breaker; this row is the latest word of any.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    breaker_open_until = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(db_default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.TextField(blank=True, db_default="")
    last_failure_blame = models.CharField(max_length=32, blank=True, db_default="")
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_relay_health"

    def __str__(self) -> str:
        return "outbox relay health"
