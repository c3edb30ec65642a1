"""The ClickHouse schema as versioned migrations, applied idempotently by `clickhouse_migrate`.

Every statement is `IF NOT EXISTS`, and applied versions are recorded in a ReplacingMergeTree
table, so running the migrate role twice, or two of them at once, is safe.
"""

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from django.conf import settings

from .client import clickhouse_client

logger = structlog.get_logger(__name__)

MIGRATIONS_TABLE = "clickhouse_migrations"


@dataclass(frozen=True)
class SchemaNames:
    database: str
    event_table: str
    cluster: str

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def engine(self, name: str) -> str:
        """`name` (a MergeTree family engine), replicated when a cluster is configured."""
        return f"Replicated{name}" if self.cluster else name

    @property
    def deduplication_setting(self) -> str:
        # Replicated tables deduplicate inserts by default; plain MergeTree tables only with a
        # window. Either way a re-sent batch with the same insert_deduplication_token is dropped.
        return "" if self.cluster else "non_replicated_deduplication_window = 10000"

    @classmethod
    def from_settings(cls) -> "SchemaNames":
        return cls(
            database=settings.CLICKHOUSE_DATABASE,
            event_table=settings.CLICKHOUSE_EVENT_TABLE,
            cluster=settings.CLICKHOUSE_CLUSTER,
        )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[SchemaNames], list[str]]


def _create_event_log(names: SchemaNames) -> list[str]:
    settings_clause = (
        f"SETTINGS {names.deduplication_setting}" if names.deduplication_setting else ""
    )
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {names.database}.{names.event_table}{names.on_cluster}
        (
            event_id UUID,
            event_type LowCardinality(String),
            event_date_time DateTime64(6, 'UTC'),
            environment LowCardinality(String),
            event_context String,
            metadata_version UInt32,
            relayed_at DateTime64(6, 'UTC') DEFAULT now64(6),
            CONSTRAINT event_type_is_snake_case CHECK match(event_type, '^[a-z][a-z0-9_]*$')
        )
        ENGINE = {names.engine("ReplacingMergeTree")}
        PARTITION BY toYYYYMM(event_date_time)
        -- A redelivered event has the same key, so merges (and FINAL) collapse it to one row.
        ORDER BY (event_type, event_date_time, event_id)
        {settings_clause}
        """
    ]


MIGRATIONS: list[Migration] = [
    Migration(1, "create_event_log", _create_event_log),
]


def clickhouse_migrate() -> list[str]:
    """Create the database and apply the migrations not applied yet; returns their names."""
    names = SchemaNames.from_settings()
    clickhouse_client(database="default").command(
        f"CREATE DATABASE IF NOT EXISTS {names.database}{names.on_cluster}"
    )
    client = clickhouse_client()
    client.command(
        f"""
        CREATE TABLE IF NOT EXISTS {names.database}.{MIGRATIONS_TABLE}{names.on_cluster}
        (version UInt32, name String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6))
        ENGINE = {names.engine("ReplacingMergeTree")}
        ORDER BY version
        """
    )
    applied = {
        row[0]
        for row in client.query(
            # Identifiers only, checked by the settings.
            f"SELECT version FROM {names.database}.{MIGRATIONS_TABLE} FINAL"  # noqa: S608
        ).result_rows
    }
    newly_applied = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        for statement in migration.statements(names):
            client.command(statement)
        client.insert(
            f"{names.database}.{MIGRATIONS_TABLE}",
            [(migration.version, migration.name)],
            column_names=["version", "name"],
        )
        logger.info("clickhouse_migration_applied", version=migration.version, name=migration.name)
        newly_applied.append(migration.name)
    return newly_applied
