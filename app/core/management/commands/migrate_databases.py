from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from app.clickhouse.schema import clickhouse_migrate
from app.core.dependencies import DependencyTimeout, dependencies_wait

# Any fixed number: the PostgreSQL advisory lock that lets one migrate run at a time.
_MIGRATION_LOCK_KEY = 7_166_052_093


class Command(BaseCommand):
    help = (
        "The migrate role: wait for PostgreSQL and ClickHouse, then apply the PostgreSQL "
        "migrations and the ClickHouse schema. Concurrent or repeated runs are safe."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=300,
            help="Seconds to wait for the databases before failing.",
        )

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        try:
            dependencies_wait(["database", "clickhouse"], timeout=timeout)
        except DependencyTimeout as error:
            raise CommandError(f"cannot migrate: {error}") from error
        with connection.cursor() as cursor:
            # A second migrate (another Job, a retried pod) waits here, then finds nothing to do.
            # A migration may rewrite or index a large table: no statement timeout for it.
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("SELECT pg_advisory_lock(%s)", [_MIGRATION_LOCK_KEY])
            try:
                call_command("migrate", interactive=False, verbosity=options["verbosity"])
                applied = clickhouse_migrate()
                self.stdout.write(f"ClickHouse: applied {len(applied)} migration(s)")
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATION_LOCK_KEY])
