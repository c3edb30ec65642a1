from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from app.clickhouse.schema import clickhouse_migrate, clickhouse_pending_migrations


class Command(BaseCommand):
    help = "Apply the ClickHouse schema migrations (idempotent; safe to run concurrently)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; exit non-zero when a ClickHouse migration is pending.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            pending = clickhouse_pending_migrations()
            if pending:
                raise CommandError(
                    f"{len(pending)} pending ClickHouse migration(s): {', '.join(pending)}"
                )
            return
        applied = clickhouse_migrate()
        self.stdout.write(
            f"applied {len(applied)} ClickHouse migration(s): {', '.join(applied) or '-'}"
        )
