import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from app.outbox.selectors import outbox_status


class Command(BaseCommand):
    help = (
        "Show the outbox backlog (pending, due, retrying, dead-lettered, oldest age, attempts) "
        "and the relay's circuit breaker and last failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args: Any, as_json: bool, **options: Any) -> None:
        status = outbox_status()
        if as_json:
            self.stdout.write(json.dumps(status.as_dict()))
            return
        for line in status.summary_lines():
            self.stdout.write(line)
        self.stdout.write("attempts histogram:")
        for attempts, rows in sorted(status.attempts_histogram.items()):
            self.stdout.write(f"  {attempts:>3} attempts: {rows}")
