from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import OutboxEvent


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    due: int
    dead: int
    oldest_pending_age_seconds: float | None
    # {attempts: rows} over pending and dead rows alike.
    attempts_histogram: dict[int, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "due": self.due,
            "dead": self.dead,
            "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
            "attempts_histogram": {str(k): v for k, v in self.attempts_histogram.items()},
        }

    def summary_lines(self) -> list[str]:
        """The backlog in three lines, as `outbox_status` and the status page print it."""
        age = self.oldest_pending_age_seconds
        return [
            f"pending: {self.pending} ({self.due} due)",
            f"oldest pending age: {'-' if age is None else f'{age:.1f}s'}",
            f"dead-lettered: {self.dead}",
        ]


def outbox_status() -> OutboxStatus:
    now = timezone.now()
    pending_filter = Q(dead_lettered_at__isnull=True)
    totals = OutboxEvent.objects.aggregate(
        pending=Count("id", filter=pending_filter),
        due=Count("id", filter=pending_filter & Q(next_attempt_at__lte=now)),
        dead=Count("id", filter=~pending_filter),
        oldest_pending=Min("occurred_at", filter=pending_filter),
    )
    histogram = dict(
        OutboxEvent.objects.values_list("attempts")
        .annotate(rows=Count("id"))
        .order_by("attempts")
        .values_list("attempts", "rows")
    )
    oldest = totals["oldest_pending"]
    return OutboxStatus(
        pending=totals["pending"],
        due=totals["due"],
        dead=totals["dead"],
        oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
        attempts_histogram=histogram,
    )
