"""The ClickHouse schema as versioned migrations, applied idempotently by `clickhouse_migrate`.

Every statement is `IF NOT EXISTS`, and applied versions are recorded in a ReplacingMergeTree
table, so running the migrate role twice, or two of them at once, is safe.
"""

import re
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
    deduplication_window: int

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def engine(self, name: str) -> str:
        """`name` (a MergeTree family engine), replicated when a cluster is configured."""
        return f"Replicated{name}" if self.cluster else name

    @property
    def local_table(self) -> str:
        """Where the rows are stored: the event table itself, or with a cluster the replicated
        table behind the Distributed one that the relay inserts into."""
        return f"{self.event_table}_local" if self.cluster else self.event_table

    @property
    def deduplication_window_setting(self) -> str:
        """How many recent inserts the stored table remembers by token: a re-sent batch with the
        same insert_deduplication_token is dropped only while its first insert is among them."""
        if self.cluster:
            return "replicated_deduplication_window"
        return "non_replicated_deduplication_window"

    @classmethod
    def from_settings(cls) -> "SchemaNames":
        return cls(
            database=settings.CLICKHOUSE_DATABASE,
            event_table=settings.CLICKHOUSE_EVENT_TABLE,
            cluster=settings.CLICKHOUSE_CLUSTER,
            deduplication_window=settings.CLICKHOUSE_DEDUPLICATION_WINDOW,
        )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[SchemaNames], list[str]]


def _create_event_log(names: SchemaNames) -> list[str]:
    window = f"{names.deduplication_window_setting} = {names.deduplication_window}"
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {names.database}.{names.local_table}{names.on_cluster}
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
        SETTINGS {window}
        """
    ]


def _create_distributed_event_log(names: SchemaNames) -> list[str]:
    """With a cluster: the table the relay inserts into and readers query, spread over the
    shards by event_id, so a re-sent batch reaches the same shards under the same token."""
    if not names.cluster:
        return []
    local = f"{names.database}.{names.local_table}"
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {names.database}.{names.event_table}{names.on_cluster}
        AS {local}
        ENGINE = Distributed('{names.cluster}', '{names.database}', '{names.local_table}',
                             cityHash64(event_id))
        """
    ]


MIGRATIONS: list[Migration] = [
    Migration(1, "create_event_log", _create_event_log),
    Migration(2, "create_distributed_event_log", _create_distributed_event_log),
]


def deduplication_window_ensure(names: SchemaNames) -> int | None:
    """Raise the stored table's deduplication window to the configured one when it is smaller
    (a table created by an older release, or by hand); returns the window found.

    Tables keep the window they were created with; without this a larger CLICKHOUSE_
    DEDUPLICATION_WINDOW would silently not apply.
    """
    client = clickhouse_client()
    query = client.query(
        """
        SELECT create_table_query FROM system.tables
        WHERE database = {database:String} AND name = {table:String}
        """,
        parameters={"database": names.database, "table": names.local_table},
    )
    if not query.result_rows:
        return None
    create_query = str(query.result_rows[0][0])
    setting = names.deduplication_window_setting
    match = re.search(rf"\b{setting}\s*=\s*(\d+)", create_query)
    if match:
        found = int(match.group(1))
    else:
        default = client.query(
            "SELECT value FROM system.merge_tree_settings WHERE name = {name:String}",
            parameters={"name": setting},
        ).first_row
        found = int(default[0]) if default else 0
    if found < names.deduplication_window:
        client.command(
            f"ALTER TABLE {names.database}.{names.local_table}{names.on_cluster} "
            f"MODIFY SETTING {setting} = {names.deduplication_window}"
        )
        logger.info(
            "clickhouse_deduplication_window_raised",
            table=names.local_table,
            setting=setting,
            before=found,
            after=names.deduplication_window,
        )
    return found


def clickhouse_pending_migrations() -> list[str]:
    """The names of the migrations not applied yet, in order; creates and changes nothing (what
    the workers' wait-for-migrations init container asks before they start)."""
    names = SchemaNames.from_settings()
    client = clickhouse_client(database="default")
    tables = client.query(
        "SELECT count() FROM system.tables WHERE database = {database:String} "
        "AND name = {table:String}",
        parameters={"database": names.database, "table": MIGRATIONS_TABLE},
    ).result_rows
    applied: set[int] = set()
    if tables[0][0]:
        applied = {
            row[0]
            for row in client.query(
                # Identifiers only, checked by the settings.
                f"SELECT version FROM {names.database}.{MIGRATIONS_TABLE} FINAL"  # noqa: S608
            ).result_rows
        }
    return [migration.name for migration in MIGRATIONS if migration.version not in applied]


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
    deduplication_window_ensure(names)
    return newly_applied
