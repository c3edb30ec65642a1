"""Filling the outbox fast, in SQL, with rows shaped like the ones `user_register` publishes.

A `user_created` event's payload is `{"user_id": N, "email": "..."}` (about 50 bytes of JSON);
the rows below carry the same, with `occurred_at` and `next_attempt_at` spread over the past as
a steady stream of registrations would leave them, so the claim's `ORDER BY next_attempt_at, id`
walks the index as it does in production.
"""

from django.db import connection

# user_id continues across fills so emails stay distinct within a run.
_PENDING_FILL = """
INSERT INTO outbox_event
    (event_id, event_type, payload, metadata_version, occurred_at, attempts, next_attempt_at,
     last_error, dead_lettered_at)
SELECT
    gen_random_uuid(),
    'user_created',
    jsonb_build_object('user_id', g, 'email', 'user' || g || '@example.com'),
    1,
    ts,
    0,
    ts,
    '',
    NULL
FROM generate_series(%(first)s, %(first)s + %(count)s - 1) AS g,
    LATERAL (SELECT now() - make_interval(secs => (%(first)s + %(count)s - g) / 1000.0)) AS t(ts)
"""

# Rows that used up their attempts: kept, with the error that killed them, outside the claim's
# partial index.
_DEAD_FILL = """
INSERT INTO outbox_event
    (event_id, event_type, payload, metadata_version, occurred_at, attempts, next_attempt_at,
     last_error, dead_lettered_at)
SELECT
    gen_random_uuid(),
    'user_created',
    jsonb_build_object('user_id', g, 'email', 'user' || g || '@example.com'),
    1,
    now() - interval '1 day',
    10,
    now() + interval '10 minutes',
    'DatabaseError: HTTPDriver for http://clickhouse:8123 received ClickHouse error code 469'
        || ' Code: 469. DB::Exception: Constraint `event_type_is_snake_case` for table'
        || ' die_hard.event_log is violated. (VIOLATED_CONSTRAINT)',
    now() - interval '1 hour'
FROM generate_series(%(first)s, %(first)s + %(count)s - 1) AS g
"""


class OutboxFiller:
    """Inserts outbox rows through the current Django connection (autocommit)."""

    def __init__(self) -> None:
        self.next_user_id = 1

    def pending(self, count: int) -> None:
        self._fill(_PENDING_FILL, count)

    def dead(self, count: int) -> None:
        self._fill(_DEAD_FILL, count)

    def _fill(self, sql: str, count: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, {"first": self.next_user_id, "count": count})
        self.next_user_id += count


def outbox_truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE outbox_event")


def outbox_vacuum() -> None:
    """VACUUM ANALYZE, as autovacuum would have by the time a real backlog is relayed: fresh
    statistics, hint bits and visibility map set, so no run pays for an earlier one's rows."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) outbox_event")


def outbox_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM outbox_event")
        return cursor.fetchone()[0]
