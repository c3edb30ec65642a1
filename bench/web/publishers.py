"""The three ways of logging a registration that the publish-cost benchmark compares.

- `outbox`: the product (EventLogClient: an outbox row in the registration's transaction, and a
  relay wake-up after the commit from a background thread);
- `none`: no event logging at all, the floor;
- `clickhouse`: a synchronous ClickHouse insert of the event inside the request, as the seed did
  (one insert per event, through the same client and HTTP path the relay uses).
"""

import json
import uuid
from contextvars import ContextVar
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from app.clickhouse.event_log import EventLogRow, event_log_insert
from app.outbox.client import EventLogClient
from app.outbox.events import Event
from app.outbox.models import EventJSONEncoder, OutboxEvent

PUBLISH_VARIANTS = ("outbox", "none", "clickhouse")
# The outbox variant is the app's own endpoint, untouched.
VARIANT_PATHS = {
    "outbox": "/api/v1/users/",
    "none": "/bench/users/no-events/",
    "clickhouse": "/bench/users/clickhouse-insert/",
}
publish_variant: ContextVar[str] = ContextVar("bench_publish_variant", default="outbox")


class VariantEventLogClient(EventLogClient):
    def publish(self, *events: Event, occurred_at: datetime | None = None) -> list[OutboxEvent]:
        variant = publish_variant.get()
        if variant == "outbox":
            return super().publish(*events, occurred_at=occurred_at)
        if variant == "clickhouse":
            occurred_at = occurred_at or timezone.now()
            rows = [
                EventLogRow(
                    uuid.uuid4(),
                    event.event_type,
                    occurred_at,
                    settings.ENVIRONMENT_NAME,
                    json.dumps(event.context(), cls=EventJSONEncoder),
                    event.metadata_version,
                )
                for event in events
            ]
            # A token of its own, as every insert must have (its first event's id).
            event_log_insert(rows, token=str(rows[0].event_id))
        return []
