import json

from django.core.management.base import BaseCommand

from app.outbox.selectors import outbox_status


class Command(BaseCommand):
    help = "Show the outbox backlog: pending, due, dead-lettered, oldest age, attempts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args, as_json: bool, **options):
        status = outbox_status()
        if as_json:
            self.stdout.write(json.dumps(status.as_dict()))
            return
        age = status.oldest_pending_age_seconds
        self.stdout.write(f"pending: {status.pending} ({status.due} due)")
        self.stdout.write(f"oldest pending age: {'-' if age is None else f'{age:.1f}s'}")
        self.stdout.write(f"dead-lettered: {status.dead}")
        self.stdout.write("attempts histogram:")
        for attempts, rows in sorted(status.attempts_histogram.items()):
            self.stdout.write(f"  {attempts:>3} attempts: {rows}")
