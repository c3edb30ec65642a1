from typing import Any

from django.core.management.base import BaseCommand

from app.clickhouse.schema import clickhouse_migrate


class Command(BaseCommand):
    help = "Apply the ClickHouse schema migrations (idempotent; safe to run concurrently)."

    def handle(self, *args: Any, **options: Any) -> None:
        applied = clickhouse_migrate()
        self.stdout.write(
            f"applied {len(applied)} ClickHouse migration(s): {', '.join(applied) or '-'}"
        )
