from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Min, Q
from django.utils import timezone

from .batches import BATCHES
from .models import OutboxEvent, OutboxRelayHealth


@dataclass(frozen=True)
class RelayHealth:
    """What the relays last reported (OutboxRelayHealth), as operators read it."""

    breaker: str  # "closed" or "open"
    breaker_open_until: datetime | None
    consecutive_failures: int
    last_failure: str
    last_failure_blame: str
    last_failure_at: datetime | None

    def as_dict(self, *, detailed: bool = True) -> dict[str, Any]:
        return {
            "breaker": self.breaker,
            "breaker_open_until": _iso(self.breaker_open_until),
            "consecutive_failures": self.consecutive_failures,
            # Error texts can name hosts: only for those allowed to see details.
            "last_failure": self.last_failure if detailed else "",
            "last_failure_blame": self.last_failure_blame,
            "last_failure_at": _iso(self.last_failure_at),
        }


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    # Pending rows a relay may take now: not in a batch, or in a batch whose lease ran out.
    due: int
    # Pending rows in batches waiting for a retry after ClickHouse rejected their data.
    retrying: int
    dead: int
    oldest_pending_age_seconds: float | None
    # {attempts: rows} over pending and dead rows alike.
    attempts_histogram: dict[int, int]
    relay: RelayHealth

    def as_dict(self, *, detailed: bool = True) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "due": self.due,
            "retrying": self.retrying,
            "dead": self.dead,
            "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
            "attempts_histogram": {str(k): v for k, v in self.attempts_histogram.items()},
            "relay": self.relay.as_dict(detailed=detailed),
        }

    def summary_lines(self, *, detailed: bool = True) -> list[str]:
        """The backlog and the relay, as `outbox_status` and the status page print them (the
        failure's text only when `detailed`: it can name hosts)."""
        age = self.oldest_pending_age_seconds
        relay = self.relay
        breaker = relay.breaker
        if relay.breaker_open_until is not None and relay.breaker == "open":
            breaker += f" until {relay.breaker_open_until.isoformat(timespec='seconds')}"
        if relay.consecutive_failures:
            breaker += f" ({relay.consecutive_failures} failures in a row)"
        failure = "-"
        if relay.last_failure_at is not None:
            when = relay.last_failure_at.isoformat(timespec="seconds")
            failure = f"{when} [{relay.last_failure_blame}]"
            if detailed:
                failure += f" {relay.last_failure}"
        return [
            f"pending: {self.pending} ({self.due} due, {self.retrying} retrying)",
            f"oldest pending age: {'-' if age is None else f'{age:.1f}s'}",
            f"dead-lettered: {self.dead}",
            f"relay breaker: {breaker}",
            f"last failure: {failure}",
        ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def relay_health() -> RelayHealth:
    health = OutboxRelayHealth.objects.filter(pk=1).first()
    if health is None:  # no relay has failed yet
        return RelayHealth("closed", None, 0, "", "", None)
    now = timezone.now()
    is_open = health.breaker_open_until is not None and health.breaker_open_until > now
    return RelayHealth(
        breaker="open" if is_open else "closed",
        breaker_open_until=health.breaker_open_until,
        consecutive_failures=health.consecutive_failures,
        last_failure=health.last_failure,
        last_failure_blame=health.last_failure_blame,
        last_failure_at=health.last_failure_at,
    )


def _batched_rows() -> tuple[int, int]:
    """Rows in batches whose lease ran out (due again), and rows in batches waiting for a
    retry after ClickHouse rejected their data."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT coalesce(sum(cardinality(outbox_ids))
                            FILTER (WHERE leased_until <= clock_timestamp()), 0),
                   coalesce(sum(cardinality(outbox_ids))
                            FILTER (WHERE leased_until > clock_timestamp() AND attempts > 0), 0)
            FROM {BATCHES}
            """  # noqa: S608 (the table name comes from the model)
        )
        batched_due, retrying = cursor.fetchone()
    return int(batched_due), int(retrying)


def outbox_status() -> OutboxStatus:
    now = timezone.now()
    pending_filter = Q(dead_lettered_at__isnull=True)
    totals = OutboxEvent.objects.aggregate(
        pending=Count("id", filter=pending_filter),
        unbatched=Count("id", filter=pending_filter & Q(batch_id__isnull=True)),
        dead=Count("id", filter=~pending_filter),
        oldest_pending=Min("occurred_at", filter=pending_filter),
    )
    batched_due, retrying = _batched_rows()
    histogram = dict(
        OutboxEvent.objects.values_list("attempts")
        .annotate(rows=Count("id"))
        .order_by("attempts")
        .values_list("attempts", "rows")
    )
    oldest = totals["oldest_pending"]
    return OutboxStatus(
        pending=totals["pending"],
        due=totals["unbatched"] + batched_due,
        retrying=retrying,
        dead=totals["dead"],
        oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
        attempts_histogram=histogram,
        relay=relay_health(),
    )


@dataclass(frozen=True)
class OutboxBacklog:
    """The outbox in four numbers, for the metrics (cheaper than `outbox_status`)."""

    pending: int
    due: int
    dead: int
    # When the oldest pending row was published (its place in line); None when none is pending.
    oldest_pending_since: datetime | None


def outbox_backlog() -> OutboxBacklog:
    """Every query here is served by an index: the pending rows by the partial due index
    (outbox_event_due_idx, dead rows are outside it), the oldest one by its first entry, the
    dead rows by outbox_event_dead_idx, the batches by outbox_batch_lease_idx. Counting the
    pending rows still reads each of them once: the callers run this once per interval for the
    whole deployment (app/outbox/metrics.py)."""
    pending_filter = Q(dead_lettered_at__isnull=True)
    pending = OutboxEvent.objects.filter(pending_filter).aggregate(
        pending=Count("id"), unbatched=Count("id", filter=Q(batch_id__isnull=True))
    )
    oldest = (
        OutboxEvent.objects.filter(pending_filter)
        .order_by("next_attempt_at", "id")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    batched_due, _retrying = _batched_rows()
    return OutboxBacklog(
        pending=pending["pending"],
        due=pending["unbatched"] + batched_due,
        dead=OutboxEvent.objects.filter(dead_lettered_at__isnull=False).count(),
        oldest_pending_since=oldest,
    )
