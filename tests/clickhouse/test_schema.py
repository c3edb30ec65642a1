import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table
from app.clickhouse.schema import (
    MIGRATIONS,
    SchemaNames,
    clickhouse_migrate,
    clickhouse_pending_migrations,
    deduplication_window_ensure,
)
from app.config.env import PROJECT_ROOT


def test_migrations_are_idempotent_and_recorded(clickhouse_url):
    assert clickhouse_migrate() == []  # the session fixture applied them already

    recorded = (
        clickhouse_client()
        .query("SELECT version, name FROM clickhouse_migrations FINAL ORDER BY version")
        .result_rows
    )
    assert recorded == [(migration.version, migration.name) for migration in MIGRATIONS]


def test_check_reports_nothing_pending_once_the_schema_is_applied(clickhouse_url, capsys):
    assert clickhouse_pending_migrations() == []
    call_command("clickhouse_migrate", "--check")


def test_check_lists_pending_migrations_and_changes_nothing(clickhouse_url, settings):
    """What the workers' wait-for-migrations init container runs before the new schema is there."""
    database = f"test_die_hard_pending_{os.getpid()}"
    settings.CLICKHOUSE_DATABASE = database
    assert clickhouse_pending_migrations() == [migration.name for migration in MIGRATIONS]
    with pytest.raises(CommandError, match="pending ClickHouse migration"):
        call_command("clickhouse_migrate", "--check")
    databases = clickhouse_client(database="default").query("SHOW DATABASES").result_rows
    assert (database,) not in databases, "--check must not create anything"


def test_the_event_log_keeps_its_columns_and_deduplicates_on_event_id(clickhouse_url):
    client = clickhouse_client()
    database, table = event_log_table().split(".")
    columns = dict(
        client.query(
            "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s",
            parameters={"d": database, "t": table},
        ).result_rows
    )
    engine, partition_key, sorting_key = client.query(
        "SELECT engine, partition_key, sorting_key FROM system.tables "
        "WHERE database = %(d)s AND name = %(t)s",
        parameters={"d": database, "t": table},
    ).first_row

    assert columns["event_type"] == "LowCardinality(String)"
    assert columns["event_date_time"] == "DateTime64(6, 'UTC')"
    assert columns["environment"] == "LowCardinality(String)"
    assert columns["event_context"] == "String"
    assert columns["metadata_version"] == "UInt32"
    assert columns["event_id"] == "UUID"
    assert engine == "ReplacingMergeTree"
    assert partition_key == "toYYYYMM(event_date_time)"
    assert "event_id" in sorting_key


def _parses(statement: str) -> bool:
    """ClickHouse's own parser accepts `statement` (formatQuery raises on a syntax error)."""
    query = "SELECT formatQuery({statement:String})"
    return bool(clickhouse_client().query(query, parameters={"statement": statement}).first_row[0])


def test_a_clustered_deployment_inserts_through_a_distributed_table_sharded_by_event_id(
    clickhouse_url,
):
    names = SchemaNames(
        database="analytics", event_table="events", cluster="main", deduplication_window=10_000
    )

    (local,) = MIGRATIONS[0].statements(names)
    (distributed,) = MIGRATIONS[1].statements(names)

    assert "CREATE TABLE IF NOT EXISTS analytics.events_local ON CLUSTER 'main'" in local
    assert "ENGINE = ReplicatedReplacingMergeTree" in local
    assert "SETTINGS replicated_deduplication_window = 10000" in local
    assert "CREATE TABLE IF NOT EXISTS analytics.events ON CLUSTER 'main'" in distributed
    assert "AS analytics.events_local" in distributed
    assert "Distributed('main', 'analytics', 'events_local',\n" in distributed
    assert "cityHash64(event_id))" in distributed
    assert _parses(local)
    assert _parses(distributed)


def test_a_single_server_has_no_distributed_table():
    names = SchemaNames(database="d", event_table="events", cluster="", deduplication_window=7)

    (local,) = MIGRATIONS[0].statements(names)

    assert "CREATE TABLE IF NOT EXISTS d.events\n" in local
    assert "SETTINGS non_replicated_deduplication_window = 7" in local
    assert MIGRATIONS[1].statements(names) == []


def _create_table_query() -> str:
    database, table = event_log_table().split(".")
    query = "SELECT create_table_query FROM system.tables WHERE database = %(d)s AND name = %(t)s"
    return str(
        clickhouse_client().query(query, parameters={"d": database, "t": table}).first_row[0]
    )


def test_the_migrate_role_raises_a_deduplication_window_smaller_than_configured(event_log):
    clickhouse_client().command(
        f"ALTER TABLE {event_log} MODIFY SETTING non_replicated_deduplication_window = 5"
    )

    found = deduplication_window_ensure(SchemaNames.from_settings())

    assert found == 5
    assert "non_replicated_deduplication_window = 10000" in _create_table_query()
    assert deduplication_window_ensure(SchemaNames.from_settings()) == 10_000


def test_the_embedded_engine_url_works_end_to_end(tmp_path):
    """chdb://<path> (the in-process engine) takes the same migrate, insert and count path."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "app.config.settings",
        "DEBUG": "true",
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'engine'}",
        "CLICKHOUSE_DATABASE": "embedded",
    }

    done = subprocess.run(
        [sys.executable, "-m", "tests.support.scripts.embedded_engine_roundtrip"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert "count 1" in done.stdout.splitlines()
