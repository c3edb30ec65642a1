"""ClickHouse access through clickhouse-connect: one client per process, configured by URL."""

import os
import threading

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from django.conf import settings

_clients: dict[tuple[int, str, str], Client] = {}
_clients_lock = threading.Lock()


def _reset_lock_in_child() -> None:
    # A fork while another thread held the lock (the worker's health reporter connecting, as
    # Celery forks its pool) would leave the child's copy locked forever.
    global _clients_lock
    _clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def clickhouse_client_for_url(url: str, *, database: str | None) -> Client:
    """A new client for `url`: `http(s)://user:password@host:port/` or `chdb://<path>`."""
    if url.startswith("chdb:"):
        # The embedded engine: no network, so no timeouts.
        return clickhouse_connect.get_client(dsn=url, database=database)
    return clickhouse_connect.get_client(
        dsn=url,
        database=database,
        connect_timeout=settings.CLICKHOUSE_CONNECT_TIMEOUT,
        send_receive_timeout=settings.CLICKHOUSE_SEND_RECEIVE_TIMEOUT,
        # No server-side session: the client is shared by the threads of a process.
        autogenerate_session_id=False,
    )


def clickhouse_client(*, database: str | None = None) -> Client:
    """This process's client for `database` (default: CLICKHOUSE_DATABASE).

    A forked child makes its own: connections must not be shared across processes. Keyed by the
    URL too, so a process whose CLICKHOUSE_URL setting changes (tests do) gets a new client.
    """
    database = database or settings.CLICKHOUSE_DATABASE
    key = (os.getpid(), settings.CLICKHOUSE_URL, database)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = clickhouse_client_for_url(
                    settings.CLICKHOUSE_URL, database=database
                )
    return client
