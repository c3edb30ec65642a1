"""The backing services of the containers: this machine's PostgreSQL and Redis and a ClickHouse
HTTP front (devtools/clickhouse_http.py, chdb), each reached by the pods through a
CuttableProxy bound to the podman bridge's gateway (PostgreSQL and Redis listen on 127.0.0.1
only, which a container cannot reach), so that a test can cut, stall or make them lose replies.

    with BackingServices(workdir) as services:
        services.postgres.url_for_pods   # postgres://postgres@10.88.0.1:<proxy port>/die_hard_e2e
        services.postgres.url_for_host   # postgres://postgres@127.0.0.1:5432/die_hard_e2e
        services.clickhouse.proxy.cut()  # ClickHouse is gone for the pods

The database (`E2E_DATABASE`, default die_hard_e2e) is created fresh and dropped at the end;
the Redis database (`E2E_REDIS_DB`, default 9) is flushed at both ends; ClickHouse's data lives
under `workdir`. An anchor pod (podman's pause container) keeps the bridge up as long as the
services live: netavark removes the bridge, gateway address included, with its last container.
"""

import os
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg
import redis

from tests.support.clickhouse import running_devserver
from tests.support.proxy import CuttableProxy

from .podman import LABEL, bridge_gateway, podman

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


@dataclass
class BackingService:
    name: str
    proxy: CuttableProxy
    url_for_pods: str  # through the proxy on the bridge gateway: what the pods' Secret holds
    url_for_host: str  # direct: host-side checks and accounting


class BackingServices:
    def __init__(
        self,
        workdir: Path,
        database: str | None = None,
        redis_db: int | None = None,
        network: str = "podman",
    ):
        self.workdir = workdir
        self.database = database or os.environ.get("E2E_DATABASE", "die_hard_e2e")
        self.redis_db = redis_db if redis_db is not None else int(os.environ.get("E2E_REDIS_DB", 9))
        self.network = network
        self._stack = ExitStack()

    def __enter__(self) -> "BackingServices":
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        anchor = f"e2e-anchor-{uuid.uuid4().hex[:8]}"
        podman("pod", "create", "--name", anchor, "--network", self.network,
               "--label", f"{LABEL}=anchor")  # fmt: skip
        self._stack.callback(podman, "pod", "rm", "--force", anchor, check=False)
        podman("pod", "start", anchor)
        self.gateway, self.bridge = bridge_gateway(self.network)

        postgres_host = f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{self.database}"
        self._recreate_database()
        self._stack.callback(self._drop_database)
        self.postgres = self._forward("postgres", POSTGRES, postgres_host)

        redis_host = f"redis://{REDIS[0]}:{REDIS[1]}/{self.redis_db}"
        redis.Redis.from_url(redis_host).flushdb()
        self._stack.callback(lambda: redis.Redis.from_url(redis_host).flushdb())
        self.redis = self._forward("redis", REDIS, redis_host)

        clickhouse_host = self._stack.enter_context(
            running_devserver(self.workdir / "clickhouse", "--allow-host", self.gateway)
        )
        address = urlsplit(clickhouse_host)
        assert address.hostname
        assert address.port
        self.clickhouse = self._forward(
            "clickhouse", (address.hostname, address.port), clickhouse_host
        )

    def clickhouse_query(self, sql: str) -> str:
        """A read-only query, straight to the ClickHouse front (not through the proxy)."""
        url = f"{self.clickhouse.url_for_host}?{urlencode({'query': sql})}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own front
            return response.read().decode().strip()

    def health(self) -> list[str]:
        """What is wrong with the services themselves, seen from the host (direct, not through
        the proxies): for failure messages, so a broken service is not blamed on the pods."""
        problems = []
        checks = {
            "PostgreSQL": lambda: self.postgres_connect().close(),
            "Redis": lambda: redis.Redis.from_url(self.redis.url_for_host).ping(),
            "ClickHouse": lambda: self.clickhouse_query("SELECT 1"),
        }
        for name, check in checks.items():
            try:
                check()
            except Exception as error:  # any failure is the answer
                problems.append(f"{name}, direct from the host, fails: {error!r}")
        return problems

    def postgres_connect(self) -> psycopg.Connection:
        """A connection to the release's database, straight (not through the proxy)."""
        return psycopg.connect(self.postgres.url_for_host, autocommit=True)

    def _forward(self, name: str, target: tuple[str, int], url_for_host: str) -> BackingService:
        proxy = CuttableProxy(*target, listen_host=self.gateway)
        self._stack.callback(proxy.close)
        address = f"{target[0]}:{target[1]}"
        assert address in url_for_host, (address, url_for_host)
        url_for_pods = url_for_host.replace(address, f"{self.gateway}:{proxy.port}", 1)
        return BackingService(name, proxy, url_for_pods, url_for_host)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="postgres", autocommit=True
        )

    def _recreate_database(self) -> None:
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.database}"')

    def _drop_database(self) -> None:
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
