"""The embedded-engine HTTP front (devtools.clickhouse_http), driven as the app drives a real
ClickHouse: a separate process, reached through clickhouse-connect's HTTP client."""

import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from app.config.env import PROJECT_ROOT
from tests.support.clickhouse import running_devserver

DATABASE = "devserver_test"
COLUMNS = ["id", "at", "payload"]


# A client in another OS process: inserts `batches` batches of `rows` fresh rows into a table.
@pytest.fixture(scope="module")
def devserver(tmp_path_factory) -> Iterator[int]:
    """A devserver process on a free port; yields the port. Must stop cleanly on SIGTERM."""
    with running_devserver(tmp_path_factory.mktemp("devserver") / "data") as url:
        yield urlsplit(url).port


def connect(port: int, **options) -> Client:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=port, username="default", password="", **options
    )


@pytest.fixture(scope="module")
def client(devserver) -> Client:
    connect(devserver).command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    return connect(devserver, database=DATABASE)


@pytest.fixture
def table(client) -> str:
    """A fresh table deduplicating inserts by token, and rows by id under FINAL."""
    name = f"events_{uuid.uuid4().hex[:8]}"
    client.command(
        f"CREATE TABLE {name} (id UUID, at DateTime64(6, 'UTC'), payload String) "
        "ENGINE = ReplacingMergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100"
    )
    return name


def make_rows(count: int) -> list[list]:
    start = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    return [
        [uuid.uuid4(), start + timedelta(microseconds=7 * n), f"événement {n} \t'\"\n"]
        for n in range(count)
    ]


def count(client: Client, table: str, final: bool = False) -> int:
    # `{t:Identifier}` is bound by the server: it reaches the front as the URL parameter param_t.
    query = "SELECT count() FROM {t:Identifier}"
    return client.command(f"{query} FINAL" if final else query, parameters={"t": table})


def test_ping(devserver, client):
    assert client.ping()
    with urllib.request.urlopen(f"http://127.0.0.1:{devserver}/ping", timeout=5) as response:
        assert response.read() == b"Ok.\n"


# lz4 is clickhouse-connect's default for insert bodies; the others are the client's options.
@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_inserted_rows_read_back_identical(devserver, table, compress):
    client = connect(devserver, database=DATABASE, compress=compress)
    rows = make_rows(50)

    client.insert(table, rows, column_names=COLUMNS)

    assert client.command("SELECT currentDatabase()") == DATABASE
    read = client.query(
        "SELECT id, at, payload FROM {t:Identifier} ORDER BY at", parameters={"t": table}
    ).result_rows
    # DateTime64(6, 'UTC') comes back as naive UTC, clickhouse-connect's default.
    assert [[id_, at.replace(tzinfo=UTC), payload] for id_, at, payload in read] == rows
    assert read[0][1].microsecond == 999_999


def test_a_repeated_insert_with_the_same_token_is_dropped(client, table):
    rows, other_rows = make_rows(10), make_rows(5)

    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "x"})
    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "x"})
    # Dropped for its token, not its content (which alone deduplicates identical inserts).
    client.insert(
        table, other_rows, column_names=COLUMNS, settings={"insert_deduplication_token": "x"}
    )

    assert count(client, table) == 10


def test_a_setting_applies_to_its_own_request_only(client, table):
    client.insert(
        table, make_rows(10), column_names=COLUMNS, settings={"insert_deduplication_token": "x"}
    )
    client.insert(table, make_rows(5), column_names=COLUMNS)

    assert count(client, table) == 15


def test_an_insert_with_another_token_is_kept(client, table):
    rows = make_rows(10)

    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "x"})
    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "y"})

    assert count(client, table) == 20
    assert count(client, table, final=True) == 10


def test_an_error_is_clickhouses(client):
    with pytest.raises(DatabaseError, match=r"Code: 60\. DB::Exception: .*no_such_table"):
        client.query("SELECT * FROM no_such_table")
    assert client.command("SELECT 1") == 1  # and the front carries on


def test_two_processes_insert_concurrently(devserver, table, client):
    inserters = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.scripts.clickhouse_inserter",
                str(devserver),
                DATABASE,
                table,
                "10",
                "1000",
            ],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for inserter in inserters:
        _, stderr = inserter.communicate(timeout=60)
        assert inserter.returncode == 0, stderr

    assert count(client, table) == 20_000


def test_a_large_insert(client, table):
    rows = make_rows(200_000)

    summary = client.insert(table, rows, column_names=COLUMNS)

    assert summary.written_rows == 200_000
    assert count(client, table) == 200_000
    unique = client.command("SELECT uniqExact(id) FROM {t:Identifier}", parameters={"t": table})
    assert unique == 200_000


def test_rows_the_table_refuses_fail_the_insert_as_on_a_server(client):
    client.command("DROP TABLE IF EXISTS checked")
    client.command(
        "CREATE TABLE checked (name String, CONSTRAINT lowercase CHECK match(name, '^[a-z]+$')) "
        "ENGINE = MergeTree ORDER BY name"
    )

    with pytest.raises(DatabaseError, match="Code: 469"):
        client.insert("checked", [["fine"], ["Not Fine"]], column_names=["name"])
    assert client.query("SELECT count() FROM checked").first_row[0] == 0
