import subprocess
import sys

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table
from app.clickhouse.schema import MIGRATIONS, SchemaNames, clickhouse_migrate
from app.config.env import PROJECT_ROOT


def test_migrations_are_idempotent_and_recorded(clickhouse_url):
    assert clickhouse_migrate() == []  # the session fixture applied them already

    recorded = (
        clickhouse_client()
        .query("SELECT version, name FROM clickhouse_migrations FINAL ORDER BY version")
        .result_rows
    )
    assert recorded == [(migration.version, migration.name) for migration in MIGRATIONS]


def test_the_event_log_keeps_the_seed_columns_and_deduplicates_on_event_id(clickhouse_url):
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


def test_a_clustered_deployment_gets_replicated_tables_on_the_cluster():
    names = SchemaNames(database="analytics", event_table="events", cluster="main")

    (statement,) = MIGRATIONS[0].statements(names)

    assert "CREATE TABLE IF NOT EXISTS analytics.events ON CLUSTER 'main'" in statement
    assert "ENGINE = ReplicatedReplacingMergeTree" in statement
    assert "non_replicated_deduplication_window" not in statement


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
