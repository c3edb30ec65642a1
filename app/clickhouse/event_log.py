"""Writing to the ClickHouse `event_log` table."""

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


def event_log_insert_settings(token: str) -> dict[str, str | int]:
    """The settings every relay insert is sent with, whatever the server's profile says.

    - `insert_deduplication_token`: the batch's identity; the same rows re-sent under it are
      dropped (the table keeps a deduplication window, see app/clickhouse/schema.py);
    - `insert_deduplicate=1`, `async_insert=0`: an asynchronous insert would ignore the token
      and could acknowledge rows that a server restart then loses, after PostgreSQL deleted them;
    - `max_execution_time`: the server gives up when the relay would have;
    - with a cluster, a synchronous Distributed insert (errors reach the relay, and a retry
      lands on the same shards: the table is sharded by event_id) and a majority quorum.
    """
    pinned: dict[str, str | int] = {
        "insert_deduplication_token": token,
        "insert_deduplicate": 1,
        "async_insert": 0,
        "max_execution_time": max(1, int(settings.CLICKHOUSE_INSERT_TIMEOUT)),
    }
    if settings.CLICKHOUSE_CLUSTER:
        pinned |= {"distributed_foreground_insert": 1, "insert_quorum": "auto"}
    return pinned


def event_log_insert(rows: Sequence[EventLogRow], *, token: str) -> None:
    """Insert `rows` in one insert under the deduplication token `token` (see
    event_log_insert_settings): sent again with the same token, ClickHouse drops them."""
    client = clickhouse_client(timeout=settings.CLICKHOUSE_INSERT_TIMEOUT)
    client.insert(
        event_log_table(),
        rows,
        column_names=EVENT_LOG_COLUMNS,
        settings=event_log_insert_settings(token),
    )
