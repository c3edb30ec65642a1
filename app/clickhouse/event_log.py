"""Writing to the ClickHouse `event_log` table."""

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from django.conf import settings

from .client import clickhouse_client

EVENT_LOG_COLUMNS = (
    "event_id",
    "event_type",
    "event_date_time",
    "environment",
    "event_context",
    "metadata_version",
)


class EventLogRow(NamedTuple):
    event_id: UUID
    event_type: str
    event_date_time: datetime
    environment: str
    event_context: str
    metadata_version: int


def event_log_table() -> str:
    return f"{settings.CLICKHOUSE_DATABASE}.{settings.CLICKHOUSE_EVENT_TABLE}"


def event_log_insert(rows: Sequence[EventLogRow]) -> None:
    """Insert `rows` in one insert; the same rows sent again are dropped by ClickHouse.

    The deduplication token is derived from the event ids, so a batch re-sent after a relay
    died between this insert and its PostgreSQL commit is discarded as a whole; any other
    overlap collapses on the table's key (ReplacingMergeTree).
    """
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.event_id.bytes)
    clickhouse_client().insert(
        event_log_table(),
        rows,
        column_names=EVENT_LOG_COLUMNS,
        settings={"insert_deduplication_token": digest.hexdigest()},
    )
