"""The embedded-engine HTTP front (devtools.clickhouse_http), driven as the app drives a real
ClickHouse: a separate process, reached through clickhouse-connect's HTTP client; and over plain
HTTP for what a web page in a developer's browser, or a careless client, could send it."""

import http.client
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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


# Reachable from a developer's browser: writes only on POST, loopback names only, bounded bodies.


@contextmanager
def front_with(data_dir: Path, *options: str) -> Iterator[int]:
    """A front started with extra command-line `options`; yields its port."""
    with running_devserver(data_dir, *options) as url:
        port = urlsplit(url).port
        assert port is not None
        yield port


@pytest.fixture(scope="module")
def small_body_front(tmp_path_factory) -> Iterator[int]:
    """A front that takes request bodies up to 64 KiB; yields its port."""
    with front_with(
        tmp_path_factory.mktemp("small-body") / "data", "--max-body-bytes", "65536"
    ) as port:
        yield port


def send(
    port: int, method: str, path: str = "/", body: str | bytes | None = None, **headers: str
) -> tuple[int, http.client.HTTPMessage, str]:
    """One request over its own connection; `Host=` replaces the Host header http.client sends."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def exchange(port: int, raw: bytes) -> tuple[http.client.HTTPResponse, str, bytes]:
    """Send `raw` bytes as they are (a request head, maybe part of its body); returns the
    response, its body, and what the connection carries next (b"" once the front closed it).
    The front must answer within the socket timeout without waiting for the rest of a body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read().decode()
        return response, body, sock.recv(1024)


def post_head(port: int, **headers: str) -> bytes:
    lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def table_exists(client: Client, name: str) -> bool:
    return client.command("EXISTS TABLE {t:Identifier}", parameters={"t": name}) == 1


READONLY_ERROR = re.compile(
    r"Code: 164\. DB::Exception: .*Cannot execute query in readonly mode.*\(READONLY\)"
)


def assert_readonly_error(status: int, headers: http.client.HTTPMessage, text: str) -> None:
    assert status in (400, 500), text
    assert headers["X-ClickHouse-Exception-Code"] == "164", text
    assert READONLY_ERROR.match(text), text


def table_state(client: Client, table: str) -> tuple:
    """What a write could change: the table's rows and columns, the tables there are, and a
    setting on the shared engine session."""
    return (
        count(client, table),
        client.query("DESCRIBE TABLE {t:Identifier}", parameters={"t": table}).result_rows,
        client.query("SHOW TABLES").result_rows,
        client.command("SELECT getSetting('log_comment')"),
    )


@pytest.mark.parametrize(
    ("statement", "body"),
    [
        ("INSERT INTO {t} SELECT * FROM {t}", None),
        ("INSERT INTO {t} (id, at, payload) FORMAT TSV", "{id}\t2024-01-01 00:00:00\tx\n"),
        ("/* why */ INSERT INTO {t} SELECT * FROM {t}", None),
        ("WITH 1 AS one INSERT INTO {t} SELECT * FROM {t}", None),
        ("CREATE TABLE {t}_copy AS {t}", None),
        ("ALTER TABLE {t} ADD COLUMN extra UInt8", None),
        ("RENAME TABLE {t} TO {t}_renamed", None),
        ("DELETE FROM {t} WHERE 1", None),
        ("TRUNCATE TABLE {t}", None),
        ("DROP TABLE {t}", None),
        ("OPTIMIZE TABLE {t} FINAL", None),
        ("SET log_comment = 'set by a GET'", None),
        ("SYSTEM FLUSH LOGS", None),
    ],
)
def test_a_get_runs_no_write(devserver, client, table, statement, body):
    # Twice the same rows under two tokens: OPTIMIZE … FINAL would merge them away.
    rows = make_rows(10)
    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "a"})
    client.insert(table, rows, column_names=COLUMNS, settings={"insert_deduplication_token": "b"})
    before = table_state(client, table)
    query = statement.format(t=table)
    path = "/?" + urlencode({"query": query, "database": DATABASE})

    status, headers, text = send(devserver, "GET", path, body=body and body.format(id=uuid.uuid4()))

    assert_readonly_error(status, headers, text)
    assert table_state(client, table) == before


def test_a_get_runs_no_second_statement(devserver, client, table):
    path = "/?" + urlencode({"query": f"SELECT 1; DROP TABLE {table}", "database": DATABASE})

    status, headers, text = send(devserver, "GET", path)

    assert status in (400, 500), text
    assert headers["X-ClickHouse-Exception-Code"], text
    assert table_exists(client, table)


def test_a_get_writes_no_file(devserver, tmp_path):
    target = tmp_path / "out.tsv"
    path = "/?" + urlencode({"query": f"SELECT 1 INTO OUTFILE '{target}'"})

    assert_readonly_error(*send(devserver, "GET", path))
    assert not target.exists()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "(SELECT 1)",
        "WITH 1 AS one SELECT one",
        "/* why */ select 1 -- and a comment",
        "SELECT 'INSERT INTO t' FORMAT JSONEachRow",
        "SELECT {n:UInt8}",
        "SHOW TABLES",
        "DESC system.one",
        "DESCRIBE TABLE system.one",
        "EXISTS TABLE system.one",
        "EXPLAIN SELECT 1",
        "SHOW DATABASES",
    ],
)
def test_a_get_still_reads(devserver, query):
    status, headers, text = send(devserver, "GET", "/?" + urlencode({"query": query, "param_n": 7}))

    assert status == 200, text
    assert "X-ClickHouse-Exception-Code" not in headers


def test_a_readonly_request_reads_only_and_leaves_the_session_writable(devserver, client, table):
    query = "/?" + urlencode({"query": "SELECT 1", "readonly": "1"})
    assert send(devserver, "GET", query)[::2] == (200, "1\n")
    insert = f"INSERT INTO {DATABASE}.{table} SELECT * FROM {DATABASE}.{table}"

    assert_readonly_error(*send(devserver, "POST", "/?readonly=1", body=insert))
    client.insert(table, make_rows(3), column_names=COLUMNS)
    assert count(client, table) == 3


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8123", "127.0.0.1.nip.io", "localhost.attacker.example"],
)
def test_a_request_for_another_host_is_refused(devserver, client, host):
    """A web page that rebinds its own name to 127.0.0.1 still sends that name as Host."""
    name = f"host_probe_{uuid.uuid4().hex[:8]}"

    status, headers, text = send(
        devserver,
        "POST",
        body=f"CREATE TABLE {DATABASE}.{name} (x UInt8) ENGINE = Memory",
        Host=host,
    )

    assert status == 403, text
    assert headers["Content-Type"].startswith("text/plain")
    assert "Host" in text
    assert not table_exists(client, name)


def test_a_request_without_host_is_refused(devserver):
    response, text, _ = exchange(devserver, b"GET /?query=SELECT+1 HTTP/1.0\r\n\r\n")

    assert response.status == 403, text


@pytest.mark.parametrize(
    "origin",
    [
        "http://attacker.example",
        "https://attacker.example:8123",
        "null",
        "http://localhost.attacker.example",
    ],
)
def test_a_request_from_another_origin_is_refused(devserver, client, origin):
    """A page's fetch() or form may reach 127.0.0.1, but its browser names the page's origin."""
    name = f"origin_probe_{uuid.uuid4().hex[:8]}"

    status, headers, text = send(
        devserver,
        "POST",
        body=f"CREATE TABLE {DATABASE}.{name} (x UInt8) ENGINE = Memory",
        Origin=origin,
    )

    assert status == 403, text
    assert headers["Content-Type"].startswith("text/plain")
    assert "Origin" in text
    assert not table_exists(client, name)


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1", None),
        ("127.0.0.1:{port}", None),
        ("localhost:{port}", None),
        ("LocalHost", None),
        ("[::1]:{port}", None),
        ("[::1]", None),
        ("::1", None),
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
        ("localhost:{port}", "http://localhost:3000"),
        ("127.0.0.1:{port}", "http://[::1]:8000"),
        ("127.0.0.1:{port}", "http://localhost"),
    ],
)
def test_loopback_names_are_served(devserver, host, origin):
    headers = {"Host": host.format(port=devserver)}
    if origin:
        headers["Origin"] = origin.format(port=devserver)

    assert send(devserver, "POST", body="SELECT 1", **headers)[::2] == (200, "1\n")


def test_allow_host_adds_a_name(tmp_path):
    with front_with(tmp_path / "data", "--allow-host", "devbox.internal") as port:
        assert send(port, "POST", body="SELECT 1", Host=f"devbox.internal:{port}")[0] == 200
        assert send(port, "POST", body="SELECT 1", Host=f"localhost:{port}")[0] == 200
        assert send(port, "POST", body="SELECT 1", Host="other.internal")[0] == 403


def assert_refused_as_too_large(response: http.client.HTTPResponse, text: str, after: bytes):
    assert response.status == 413, text
    assert re.match(r"Code: \d+\. DB::Exception: .*larger than", text), text
    assert response.headers["X-ClickHouse-Exception-Code"], text
    assert response.headers["Connection"] == "close"
    assert after == b""  # and the connection is closed


def test_a_body_declared_over_the_default_limit_is_refused_unread(devserver, client):
    statement = f"CREATE TABLE {DATABASE}.unread_probe (x UInt8) ENGINE = Memory\n".encode()
    head = post_head(devserver, Content_Length=str(256 * 1024 * 1024 + 1))

    assert_refused_as_too_large(*exchange(devserver, head + statement))
    assert not table_exists(client, "unread_probe")


def test_a_body_over_the_limit_is_refused_before_the_client_sends_it(devserver):
    head = post_head(devserver, Content_Length=str(256 * 1024 * 1024 + 1), Expect="100-continue")

    with socket.create_connection(("127.0.0.1", devserver), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(64).startswith(b"HTTP/1.1 413 ")


def test_a_malformed_chunk_size_is_refused(devserver):
    head = post_head(devserver, Transfer_Encoding="chunked")

    response, text, after = exchange(devserver, head + b"-1\r\nSELECT 1")

    assert response.status == 400, text
    assert after == b""


def test_a_chunk_over_the_limit_is_refused_unread(small_body_front):
    head = post_head(small_body_front, Transfer_Encoding="chunked")

    assert_refused_as_too_large(*exchange(small_body_front, head + b"100000\r\nSELECT 1"))


def test_chunks_adding_up_over_the_limit_are_refused_unread(small_body_front):
    first = b"SELECT 1 /*" + b"x" * 39_989  # 40,000 bytes
    head = post_head(small_body_front, Transfer_Encoding="chunked")

    raw = head + b"9c40\r\n" + first + b"\r\n" + b"9c40\r\n"  # the second announced, not sent
    assert_refused_as_too_large(*exchange(small_body_front, raw))


def test_bodies_up_to_the_limit_are_served(small_body_front):
    query = b"SELECT 1 /*" + b"x" * (65_536 - 11 - 2) + b"*/"
    assert send(small_body_front, "POST", body=query)[::2] == (200, "1\n")
    chunks = [query[:30_000], query[30_000:60_000], query[60_000:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    head = post_head(small_body_front, Transfer_Encoding="chunked", Connection="close")

    response, text, _ = exchange(small_body_front, head + chunked)

    assert (response.status, text) == (200, "1\n")
