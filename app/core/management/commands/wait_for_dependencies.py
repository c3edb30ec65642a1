from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from app.core.dependencies import DEPENDENCY_CHECKS, DependencyTimeout, dependencies_wait


class Command(BaseCommand):
    help = "Wait until the named backing services answer, logging what is awaited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dependencies", nargs="+", choices=sorted(DEPENDENCY_CHECKS))
        parser.add_argument(
            "--timeout", type=float, default=0, help="Seconds before giving up (0: never)."
        )

    def handle(self, *args: Any, dependencies: list[str], timeout: float, **options: Any) -> None:
        try:
            dependencies_wait(dependencies, timeout=timeout)
        except DependencyTimeout as error:
            raise CommandError(str(error)) from error
