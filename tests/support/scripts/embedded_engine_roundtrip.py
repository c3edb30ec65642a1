"""Migrate, insert the same event twice and count it, against the CLICKHOUSE_URL of the
environment (a chdb:// URL in the test): prints `count N`."""

import uuid
from datetime import UTC, datetime

import django

django.setup()

from app.clickhouse.event_log import EventLogRow, event_log_insert  # noqa: E402
from app.clickhouse.schema import clickhouse_migrate  # noqa: E402
from tests.support.clickhouse import event_log_count  # noqa: E402

clickhouse_migrate()
row = EventLogRow(uuid.uuid4(), "embedded_check", datetime.now(UTC), "test", "{}", 1)
event_log_insert([row], token="embedded-roundtrip")
event_log_insert([row], token="embedded-roundtrip")
print("count", event_log_count(event_type="embedded_check"))  # noqa: T201
