"""Reaching the backing services: one check per dependency, and waiting for them at start."""

import time
from collections.abc import Callable, Iterable

import redis
import structlog
from django.conf import settings
from django.db import connection

from app.clickhouse.client import clickhouse_ping

logger = structlog.get_logger(__name__)

# Seconds one check may take (PostgreSQL's own is DATABASE_CONNECT_TIMEOUT: each check opens a
# new connection, so a server that accepts and never answers fails it within that).
CHECK_TIMEOUT = 2.0


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def check_broker() -> None:
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=CHECK_TIMEOUT,
        socket_timeout=CHECK_TIMEOUT,
    )
    try:
        client.ping()
    finally:
        client.close()


def check_clickhouse() -> None:
    # The server, not the event database: the migrate role waits here before creating it.
    clickhouse_ping(timeout=CHECK_TIMEOUT)


DEPENDENCY_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "clickhouse": check_clickhouse,
}


class DependencyTimeout(Exception):
    pass


def dependencies_wait(names: Iterable[str], *, timeout: float, log_every: float = 5.0) -> None:
    """Return once every named dependency answers; log what is awaited while waiting.

    `timeout` 0 waits forever; otherwise DependencyTimeout names what never answered.
    """
    deadline = time.monotonic() + timeout if timeout else None
    for name in names:
        check = DEPENDENCY_CHECKS[name]
        last_logged = None
        while True:
            try:
                check()
                break
            except Exception as error:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise DependencyTimeout(
                        f"{name} did not answer within {timeout:g}s: {error}"
                    ) from error
                if last_logged is None or now - last_logged >= log_every:
                    logger.warning("waiting_for_dependency", dependency=name, error=str(error))
                    last_logged = now
                time.sleep(0.5)
        if last_logged is not None:
            logger.info("dependency_available", dependency=name)
