from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from app.outbox.services import outbox_requeue


class Command(BaseCommand):
    help = "Put dead-lettered outbox events back in line (attempts reset, due now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--event-id", action="append", default=[], dest="event_ids")
        parser.add_argument("--event-type")
        parser.add_argument(
            "--dead-since", help="Only rows dead-lettered at or after this ISO 8601 time."
        )
        parser.add_argument("--all", action="store_true", help="Every dead-lettered row.")

    def handle(
        self,
        *args: Any,
        event_ids: list[str],
        event_type: str | None,
        dead_since: str | None,
        all: bool,
        **options: Any,
    ) -> None:
        since = parse_datetime(dead_since) if dead_since else None
        if dead_since and since is None:
            raise CommandError(f"--dead-since: not an ISO 8601 time: {dead_since!r}")
        if not (event_ids or event_type or since or all):
            raise CommandError("Give a filter (--event-id, --event-type, --dead-since) or --all.")
        requeued = outbox_requeue(
            event_ids=event_ids, event_type=event_type, dead_since=since, all_dead=all
        )
        self.stdout.write(f"re-queued {requeued} dead-lettered event(s)")
