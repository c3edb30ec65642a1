"""ClickHouse access through clickhouse-connect: clients per process, configured by URL.

Creating a client talks to the server (clickhouse-connect asks for its version and settings),
so it happens outside any lock: a ClickHouse that stalls delays only the caller that needs it,
never another thread of the process (the health reporter, say).
"""

import os
import threading
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from django.conf import settings

_clients: dict[tuple[int, str, str, float], Client] = {}
_clients_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock would leave the child's copy locked forever.
    global _clients_lock
    _clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def clickhouse_client_for_url(url: str, *, database: str | None, timeout: float) -> Client:
    """A new client for `url`: `http(s)://user:password@host:port/` or `chdb://<path>`.

    `timeout` bounds every socket operation of a request; progress headers are off, so a slow
    query or insert cannot keep a connection alive past it.
    """
    if url.startswith("chdb:"):
        # The embedded engine: no network, so no timeouts.
        return clickhouse_connect.get_client(dsn=url, database=database)
    return clickhouse_connect.get_client(
        dsn=url,
        database=database,
        connect_timeout=settings.CLICKHOUSE_CONNECT_TIMEOUT,
        send_receive_timeout=timeout,
        # No server-side session: the client is shared by the threads of a process.
        autogenerate_session_id=False,
        settings={"send_progress_in_http_headers": 0},
    )


def clickhouse_client(*, database: str | None = None, timeout: float | None = None) -> Client:
    """This process's client for `database` (default: CLICKHOUSE_DATABASE) whose requests time
    out after `timeout` seconds (default: CLICKHOUSE_SEND_RECEIVE_TIMEOUT).

    A forked child makes its own: connections must not be shared across processes. Keyed by the
    URL too, so a process whose CLICKHOUSE_URL setting changes (tests do) gets a new client.
    """
    database = database or settings.CLICKHOUSE_DATABASE
    timeout = timeout or settings.CLICKHOUSE_SEND_RECEIVE_TIMEOUT
    key = (os.getpid(), settings.CLICKHOUSE_URL, database, timeout)
    client = _clients.get(key)
    if client is not None:
        return client
    created = clickhouse_client_for_url(settings.CLICKHOUSE_URL, database=database, timeout=timeout)
    with _clients_lock:
        client = _clients.setdefault(key, created)
    if client is not created:  # another thread of this process was faster
        created.close()
    return client


def clickhouse_ping(*, timeout: float) -> None:
    """Raise unless the ClickHouse server answers `/ping` within `timeout` seconds.

    A plain HTTP request, not the shared client: a health check must neither wait for a client
    to be created nor hold up anyone else while ClickHouse stalls.
    """
    url = settings.CLICKHOUSE_URL
    if url.startswith("chdb:"):
        if not clickhouse_client(database="default").ping():
            raise ConnectionError("the embedded ClickHouse did not answer")
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    ping_url = urlunsplit((parts.scheme, netloc, "/ping", "", ""))
    with urllib.request.urlopen(ping_url, timeout=timeout) as response:  # noqa: S310 (http/s only)
        if response.status != 200:
            raise ConnectionError(f"ClickHouse answered /ping with {response.status}")
