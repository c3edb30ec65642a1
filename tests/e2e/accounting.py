"""What the lifecycle counts, read host-side straight from the backing services (never through
the cuttable forwarders the pods use): users and the outbox in PostgreSQL, events in ClickHouse;
and the checks, printed as one table, that fail the run naming the failing line."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass(frozen=True)
class OutboxState:
    pending: int  # rows not yet relayed (not dead)
    dead_lettered: int
    batches: int  # outbox_batch rows: owed batches (leased, or waiting for a retry)
    leased_now: int  # of them, whose lease still runs: a relay holds them right now

    def __str__(self) -> str:
        return (
            f"backlog {self.pending} (batches {self.batches}, leased now {self.leased_now}), "
            f"dead-lettered {self.dead_lettered}"
        )


@dataclass(frozen=True)
class LeasedBatch:
    id: str
    rows: int
    leased_until: str  # a new value: a new claim (or takeover) of the batch
    leased_for: float  # seconds of lease left


class Postgres:
    """Host-side reads (and the session kill) on the release's database."""

    def __init__(self, url: str):
        self.url = url

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with (
            psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection,
            connection.cursor() as cursor,
        ):
            yield cursor

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            assert row is not None
            return tuple(row)

    def user_emails(self, domain: str) -> set[str]:
        with self._cursor() as cursor:
            cursor.execute("SELECT email FROM users_user WHERE email LIKE %s", (f"%@{domain}",))
            return {row[0] for row in cursor.fetchall()}

    def outbox(self) -> OutboxState:
        pending, dead = self._one(
            "SELECT count(*) FILTER (WHERE dead_lettered_at IS NULL),"
            " count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) FROM outbox_event"
        )
        batches, leased = self._one(
            "SELECT count(*), count(*) FILTER (WHERE leased_until > now()) FROM outbox_batch"
        )
        return OutboxState(pending, dead, batches, leased)

    def leased_batches(self) -> list[LeasedBatch]:
        """Batches a relay holds right now (claimed, lease running, not yet settled)."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT id::text, cardinality(outbox_ids), leased_until::text,"
                " extract(epoch FROM leased_until - now())::float"
                " FROM outbox_batch WHERE leased_until > now() ORDER BY created_at"
            )
            return [LeasedBatch(*row) for row in cursor.fetchall()]

    def batches_exist(self, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(
            self._one("SELECT count(*) FROM outbox_batch WHERE id::text = ANY(%s)", (ids,))[0]
        )

    def sessions(self, application_name: str) -> list[tuple[int, str, str]]:
        """(pid, state, query) of the die-hard sessions."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT pid, coalesce(state, ''), left(query, 80) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",
                (application_name,),
            )
            return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]

    def terminate(self, application_name: str) -> list[tuple[int, str, str]]:
        """pg_terminate_backend on every die-hard session; the sessions as they were."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT pid, coalesce(state, ''), left(query, 80), pg_terminate_backend(pid)"
                " FROM pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()",
                (application_name,),
            )
            return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


@dataclass(frozen=True)
class EventCounts:
    rows: int  # plain count(): every physical row, no FINAL
    distinct_events: int  # uniqExact(event_id)
    distinct_users: int  # uniqExact(user_id in the context)
    emails: frozenset[str] = frozenset()


class ClickHouse:
    def __init__(self, url: str, *, table: str = "event_log"):
        parts = urllib.parse.urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 8123)
        database = parts.path.strip("/") or "default"
        self.table = f"{database}.{table}"

    def query(self, sql: str) -> list[dict[str, Any]]:
        """A read-only query (GET, as ClickHouse runs it with readonly=2); its rows."""
        connection = http.client.HTTPConnection(*self.address, timeout=30)
        try:
            query = urllib.parse.urlencode({"query": sql + " FORMAT JSON"})
            connection.request("GET", f"/?{query}", headers={"Host": "127.0.0.1"})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"ClickHouse answered {response.status}: {body[:300]!r}")
        return list(json.loads(body)["data"])

    def user_created(self, domain: str) -> EventCounts:
        condition = (
            f"event_type = 'user_created'"
            f" AND endsWith(JSONExtractString(event_context, 'email'), '@{domain}')"
        )
        (row,) = self.query(
            f"SELECT count() AS rows, uniqExact(event_id) AS events,"
            f" uniqExact(JSONExtractInt(event_context, 'user_id')) AS users"
            f" FROM {self.table} WHERE {condition}"
        )
        emails = self.query(
            f"SELECT DISTINCT JSONExtractString(event_context, 'email') AS email"
            f" FROM {self.table} WHERE {condition}"
        )
        return EventCounts(
            int(row["rows"]),
            int(row["events"]),
            int(row["users"]),
            frozenset(item["email"] for item in emails),
        )


@dataclass
class Check:
    name: str
    expected: str
    actual: str
    passed: bool


@dataclass
class Checks:
    """Every check of the run; `table()` prints them, `failed()` names the failing lines."""

    items: list[Check] = field(default_factory=list)

    def equal(self, name: str, expected: object, actual: object) -> bool:
        return self.add(name, str(expected), str(actual), expected == actual)

    def add(self, name: str, expected: str, actual: str, passed: bool) -> bool:
        self.items.append(Check(name, expected, actual, passed))
        return passed

    def failed(self) -> list[Check]:
        return [check for check in self.items if not check.passed]

    def table(self) -> str:
        width = max([len(check.name) for check in self.items] + [5])
        expected_width = max([len(check.expected) for check in self.items] + [8])
        lines = [f"{'check':<{width}}  {'expected':<{expected_width}}  actual  result"]
        for check in self.items:
            result = "ok" if check.passed else "FAILED"
            name, expected = f"{check.name:<{width}}", f"{check.expected:<{expected_width}}"
            lines.append(f"{name}  {expected}  {check.actual}  {result}")
        return "\n".join(lines)
