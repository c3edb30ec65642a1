"""A ClickHouse HTTP front for the embedded chdb engine, for tests and `make run` only.

The embedded engine lives inside one process, so processes that must share a ClickHouse
(gunicorn, celery workers, test processes) talk to this front through clickhouse-connect's
ordinary HTTP client instead: the production code path, the real engine behind it.

    python -m devtools.clickhouse_http --path DATA_DIR [--host 127.0.0.1] [--port 8123]
        [--allow-host NAME]... [--max-body-bytes 268435456]

With `--port 0` a free port is picked. Either way the first line on stdout, once the engine is
ready, is `listening HOST:PORT`; stdout stays quiet after that.

What it serves of ClickHouse's HTTP interface: `/ping`; queries on `/` from the `query` URL
parameter and/or the request body (concatenated with a newline, as ClickHouse does), with
`Content-Length` or chunked bodies compressed as lz4, zstd, gzip, deflate or not at all;
`INSERT … FORMAT <fmt>` followed by data; the `database` and `default_format` parameters,
`param_<name>` bind parameters, and every other non-transport parameter as a setting. Errors come
back as HTTP 500 with ClickHouse's `Code: N. DB::Exception: …` text.

A web page in the developer's browser can send requests to a loopback port, so, as on a server:
- A GET runs read-only statements only (SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN;
  ClickHouse runs GET queries with readonly=2), and so does a request with a non-zero `readonly`
  parameter; anything else gets `Code: 164 … (READONLY)` and runs nothing. The engine's own
  parser tells what a statement is, and such a request may hold one only (chdb would run several).
- Only requests whose `Host` names 127.0.0.1, localhost or [::1] (any port) are served, and when
  they carry an `Origin`, it must be such a name too; others get 403 and run nothing. That
  defeats DNS rebinding and cross-site requests. `--allow-host NAME` (repeatable) trusts another
  name in both headers, for a front bound with `--host` to an address other processes reach.
- A request body (`Content-Length` or chunked, counted as it comes) over `--max-body-bytes`
  (default 256 MiB) gets 413 before the rest is read, and the connection is closed.

Limits: all requests share one engine session, serialised by a lock (`session_id` is ignored,
so a `SET` or `USE` statement, or a temporary table, is seen by every later request); request
and response bodies are held in memory, and a compressed request body is decompressed whole,
with no limit of its own; responses are never compressed; multipart requests (external data,
form-encoded parameters) are refused; a POST may write a file with `INTO OUTFILE`, which a
server refuses. Credentials are not checked.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import logging
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chdb.session import Session

logger = logging.getLogger(__name__)

# URL parameters that steer ClickHouse's HTTP handler rather than name a setting. `query`,
# `database`, `default_format` and `readonly` are used (the front enforces `readonly` itself: set
# on the shared session, the engine would refuse ever to unset it); the rest concern sessions,
# progress headers, response compression or the wire protocol, none of which this front varies,
# so they are ignored.
_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "readonly",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "role",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
    }
)
_SETTING_NAME = re.compile(r"[A-Za-z_]\w*")
# An insert carrying its data: the statement ends its first line with `FORMAT <name>`, and the
# data starts on the next line (clickhouse-connect sends `INSERT INTO t (cols) FORMAT Native\n`).
_DATA_INSERT = re.compile(rb"\s*(INSERT\s+INTO\s[^\n]*?)\s+FORMAT\s+(\w+)[^\S\n]*(?:\n|\Z)", re.I)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*\Z", re.I)
# Statements with a result set; ClickHouse names their format even when the result is empty,
# which is how clickhouse-connect's command() tells an empty result from a plain summary. In the
# engine's canonical form of a statement, they are the read-only ones.
_RESULT_STATEMENT = re.compile(r"[\s(]*(?:SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN)\b", re.I)
# A server refuses INTO OUTFILE over HTTP; the embedded engine writes the file.
_INTO_OUTFILE = re.compile(r"\bINTO OUTFILE\b")
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
# A query parameter's value is read in the escaped (TabSeparated) form.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
# `host[:port]` as in a Host header or an origin, an IPv6 address in brackets.
_AUTHORITY = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[^\s:/?#@\[\]]+))(?::\d*)?")
_ORIGIN = re.compile(r"https?://(?P<authority>[^/]*)")
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
# The longest chunk-size or trailer line read.
_MAX_LINE = 8192
# How long a refused request's connection stays open to take in what the client still sends.
_LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class Scope:
    """The database and settings a request's statement runs with."""

    database: str
    settings: dict[str, str]


@dataclass(frozen=True)
class Result:
    body: bytes
    summary: dict[str, str]


class Engine:
    """The one chdb session of the data directory.

    The lock serialises engine calls: the session's current database and settings are switched
    to each request's before its statement runs, and must not change until it has finished.
    """

    def __init__(self, path: str) -> None:
        self._session = Session(path)
        self._lock = threading.Lock()
        self._database = "default"
        # The settings currently SET on the session (all others are at their defaults).
        self._settings: dict[str, str] = {}
        timezone = self._session.query("SELECT timezone()", "TabSeparated").bytes()
        self.timezone = timezone.decode().strip()

    def query(self, scope: Scope, sql: str, fmt: str, params: dict[str, str]) -> Result:
        with self._lock:
            self._switch(scope)
            start = time.perf_counter_ns()
            result = self._session.query(sql, fmt, params=params)
            summary = {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "written_rows": str(result.rows_written()),
                "written_bytes": str(result.bytes_written()),
                "elapsed_ns": str(time.perf_counter_ns() - start),
            }
            return Result(result.bytes() or b"", summary)

    def insert(self, scope: Scope, head: str, fmt: str, data: bytes) -> Result:
        """Run `head` (an INSERT without its FORMAT clause) with `data` in format `fmt`.

        The data goes through a file and `FROM INFILE`, not chdb's streaming `send_insert`:
        chdb 4.4's `send_insert` reports success and silently drops rows that the table refuses
        (a violated CONSTRAINT, say), where a server answers with the error.
        """
        with tempfile.NamedTemporaryFile(prefix="devserver-insert-", suffix=f".{fmt}") as file:
            file.write(data)
            file.flush()
            with self._lock:
                self._switch(scope)
                start = time.perf_counter_ns()
                result = self._session.query(
                    f"{head} FROM INFILE '{file.name}' FORMAT {fmt}", "TabSeparated"
                )
                summary = {
                    "written_rows": str(result.rows_written()),
                    "written_bytes": str(result.bytes_written()),
                    "elapsed_ns": str(time.perf_counter_ns() - start),
                }
        return Result(b"", summary)

    def reads_only(self, scope: Scope, sql: str) -> bool:
        """Whether `sql` is one statement that only reads, as the engine's own parser sees it.

        The first keyword of the text would not do: a comment can come first, `WITH … INSERT …`
        is an insert, and the engine runs `SELECT 1; DROP TABLE t` as two statements (which
        this parse refuses, with ClickHouse's error for several statements).
        """
        canonical = self.query(
            scope,
            "SELECT formatQuerySingleLine({sql:String})",
            "TabSeparatedRaw",
            {"sql": sql.translate(_ESCAPED)},
        ).body.decode()
        return bool(_RESULT_STATEMENT.match(canonical)) and not _INTO_OUTFILE.search(canonical)

    def _switch(self, scope: Scope) -> None:
        """Bring the session to the scope's database and settings, touching only changes."""
        if scope.database != self._database:
            self._session.query(f"USE {_identifier(scope.database)}", "TabSeparated")
            self._database = scope.database
        for name in scope.settings:
            if not _SETTING_NAME.fullmatch(name):
                raise EngineError(115, f"Unknown setting '{name}'", "UNKNOWN_SETTING")
        wanted, current = scope.settings, self._settings
        changes = [f"{k} = {_literal(v)}" for k, v in wanted.items() if current.get(k) != v]
        changes += [f"{k} = DEFAULT" for k in current.keys() - wanted.keys()]
        if changes:
            # One SET statement: ClickHouse checks every value before applying any of them, so
            # on failure the session keeps the settings recorded here.
            self._session.query("SET " + ", ".join(changes), "TabSeparated")
            self._settings = dict(wanted)

    def close(self) -> None:
        with self._lock:
            self._session.close()


class EngineError(Exception):
    """An error this front raises itself, in ClickHouse's terms."""

    def __init__(self, code: int, message: str, name: str) -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")


class Refused(Exception):
    """A request answered without running anything; its body may be left unread."""

    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


def _too_large(limit: int) -> Refused:
    error = EngineError(
        307, f"The request body is larger than {limit} bytes (--max-body-bytes)", "TOO_MANY_BYTES"
    )
    return Refused(413, str(error), {"X-ClickHouse-Exception-Code": "307"})


def _host_name(authority: str) -> str | None:
    """The host of a Host header or of an origin's `host[:port]`, in lower case; None when it is
    not one."""
    authority = authority.strip().lower()
    if authority == "::1":  # an IPv6 address without brackets, as some clients send it
        return authority
    match = _AUTHORITY.fullmatch(authority)
    if not match:
        return None
    return match["ipv6"] or match["name"]


def _origin_host_name(origin: str) -> str | None:
    match = _ORIGIN.fullmatch(origin.strip().lower())  # `null` (an opaque origin) does not match
    return _host_name(match["authority"]) if match else None


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(value: str) -> str:
    # ClickHouse converts a string literal to a numeric setting, so quoting is always right.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _decode_body(body: bytes, encoding: str) -> bytes:
    """Undo the request's Content-Encoding. clickhouse-connect compresses inserts with lz4 by
    default, and with lz4 or zstd sends one compressed frame per block."""
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":
        return _lz4_decompress(body)
    if encoding == "zstd":
        # Reads every frame. The module clickhouse-connect uses: the stdlib's from Python 3.14.
        module = "compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd"
        return importlib.import_module(module).decompress(body)
    raise EngineError(89, f"Unknown compression method: {encoding}", "UNKNOWN_COMPRESSION_METHOD")


def _lz4_decompress(body: bytes) -> bytes:
    """lz4.frame.decompress() stops after the first frame: take them one by one."""
    lz4_frame = importlib.import_module("lz4.frame")
    parts = []
    remaining: bytes | None = body
    while remaining:
        decompressor = lz4_frame.LZ4FrameDecompressor()
        parts.append(decompressor.decompress(remaining))
        if not decompressor.eof:
            raise EngineError(271, "Truncated lz4 frame in the request body", "CANNOT_DECOMPRESS")
        remaining = decompressor.unused_data
    return b"".join(parts)


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as clickhouse-connect pools its connections: every response has a length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add some 40 ms to every request.
    disable_nagle_algorithm = True
    server: DevServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def handle_expect_100(self) -> bool:
        # Refuse before the client sends the body it announced, rather than after.
        try:
            self._check_request()
        except Refused as refused:
            self._refuse(refused)
            return False
        return super().handle_expect_100()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        try:
            self._check_request()
            body = self._read_body()
        except Refused as refused:
            self._refuse(refused)
            return
        if url.path == "/ping" or (url.path == "/" and not url.query and not body):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path != "/":
            self._reply(404, b"Not found: only / and /ping are served.\n", {})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {
            "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
            "X-ClickHouse-Timezone": params.get("session_timezone") or self.server.engine.timezone,
        }
        try:
            self._execute(params, body, headers)
        except Exception as ex:
            text = str(ex)
            start = text.find("Code: ")
            if start < 0:  # not the engine's: a bug here, or a body it cannot decode
                logger.exception("request failed")
                text = f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
                start = 0
            text = text[start:]
            code = _ERROR_CODE.match(text)
            headers["X-ClickHouse-Exception-Code"] = code.group(1) if code else "1001"
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            self._reply(500, text.encode() + b"\n", headers)

    def _execute(self, params: dict[str, str], body: bytes, headers: dict[str, str]) -> None:
        if self.headers.get("Content-Type", "").startswith("multipart/"):
            raise EngineError(48, "Multipart requests are not supported here", "NOT_IMPLEMENTED")
        body = _decode_body(body, self.headers.get("Content-Encoding", "").strip().lower())
        if "query" in params:
            body = params["query"].encode() + b"\n" + body
        engine = self.server.engine
        scope = Scope(
            database=params.get("database") or "default",
            settings={
                k: v
                for k, v in params.items()
                if k not in _TRANSPORT_PARAMS and not k.startswith("param_")
            },
        )
        insert = _DATA_INSERT.match(body)
        read_only = self.command == "GET" or params.get("readonly", "0") not in ("", "0")
        if read_only and (insert or not engine.reads_only(scope, body.decode())):
            message = "Cannot execute query in readonly mode"
            if self.command == "GET":
                message += (
                    ". For queries over HTTP, method GET implies readonly. "
                    "You should use method POST for modifying queries"
                )
            raise EngineError(164, message, "READONLY")
        if insert:
            head, fmt = insert.group(1).decode(), insert.group(2).decode()
            result = engine.insert(scope, head, fmt, body[insert.end() :])
        else:
            sql = body.decode()
            named = _TRAILING_FORMAT.search(sql)
            fmt = named.group(1) if named else params.get("default_format") or "TabSeparated"
            binds = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
            result = engine.query(scope, sql, fmt, binds)
            if result.body or _RESULT_STATEMENT.match(sql):
                headers["X-ClickHouse-Format"] = fmt
        headers["X-ClickHouse-Summary"] = json.dumps(result.summary)
        headers["Content-Type"] = "application/octet-stream"
        self._reply(200, result.body, headers)

    def _check_request(self) -> None:
        """Refuse, before reading its body, a request a web page could have sent (a name other
        than the allowed ones in Host or Origin) and a body declared over the limit."""
        allowed = self.server.allowed_hosts
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or _host_name(hosts[0]) not in allowed:
            raise Refused(
                403,
                f"Forbidden: Host {', '.join(map(repr, hosts)) or 'missing'}. This development "
                "ClickHouse front serves 127.0.0.1, localhost and [::1] (see --allow-host).\n",
            )
        origins = self.headers.get_all("Origin") or []
        if origins and (len(origins) > 1 or _origin_host_name(origins[0]) not in allowed):
            raise Refused(
                403,
                f"Forbidden: Origin {', '.join(map(repr, origins))}. This development ClickHouse "
                "front serves pages from 127.0.0.1, localhost and [::1] (see --allow-host).\n",
            )
        if self._chunked():
            return
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or (lengths and not _DIGITS.fullmatch(lengths[0].strip())):
            raise Refused(400, "Bad request: a malformed Content-Length.\n")
        if lengths and int(lengths[0]) > self.server.max_body_bytes:
            raise _too_large(self.server.max_body_bytes)

    def _chunked(self) -> bool:
        return self.headers.get("Transfer-Encoding", "").lower() == "chunked"

    def _read_body(self) -> bytes:
        if not self._chunked():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # Each chunk's size comes before its data, so the body is refused before anything over
        # the limit is read.
        limit = self.server.max_body_bytes
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(_MAX_LINE)
            size = _CHUNK_SIZE.fullmatch(line.split(b";", 1)[0].strip())
            if not size or not line.endswith(b"\n"):
                raise Refused(400, "Bad request: a malformed chunk size.\n")
            if not (length := int(size.group(), 16)):
                break
            total += length
            if total > limit:
                raise _too_large(limit)
            chunks.append(self.rfile.read(length))
            self.rfile.readline(_MAX_LINE)  # the CRLF that ends each chunk
        while (line := self.rfile.readline(_MAX_LINE)) not in (b"\r\n", b"\n", b""):
            total += len(line)  # trailer fields, dropped
            if total > limit:
                raise _too_large(limit)
        return b"".join(chunks)

    def _refuse(self, refused: Refused) -> None:
        """Answer, and close the connection: the request's body may be unread."""
        headers = {"Content-Type": "text/plain; charset=UTF-8", "Connection": "close"}
        self._reply(refused.status, refused.text.encode(), headers | refused.headers)
        # Closing a socket with unread input resets the connection, and the client can lose the
        # answer before it reads it: take in (and drop) what it still sends, for a moment.
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass  # the client went away, or kept sending longer than the moment

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DevServer(ThreadingHTTPServer):
    # An AF_INET server: once bound, its address is (host, port).
    server_address: tuple[str, int]

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        *,
        allowed_hosts: frozenset[str],
        max_body_bytes: int,
    ) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.allowed_hosts = allowed_hosts
        self.max_body_bytes = max_body_bytes


def _allowed_host(value: str) -> str:
    name = _host_name(value)
    if name is None:
        raise argparse.ArgumentTypeError(f"not a host name: {value!r}")
    return name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="the chdb data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        type=_allowed_host,
        metavar="NAME",
        help="serve requests naming NAME in Host or Origin too (repeatable); by default only "
        "127.0.0.1, localhost and [::1]",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=256 * 1024 * 1024,
        help="larger request bodies get 413 (default: 256 MiB)",
    )
    parser.add_argument("--log-level", default="WARNING", help="DEBUG logs every request")
    args = parser.parse_args(argv)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)

    engine = Engine(args.path)
    server = DevServer(
        (args.host, args.port),
        engine,
        allowed_hosts=_LOOPBACK_NAMES | set(args.allow_host),
        max_body_bytes=args.max_body_bytes,
    )

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on this thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    sys.stdout.write(f"listening {host}:{port}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        engine.close()


if __name__ == "__main__":
    main()
