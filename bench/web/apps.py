from django.apps import AppConfig


class BenchWebConfig(AppConfig):
    """Adds the publish-cost benchmark's variants to the web role; bench-only, never deployed."""

    name = "bench.web"
    label = "bench_web"

    def ready(self) -> None:
        from app.users import services

        from .publishers import VariantEventLogClient

        # user_register looks EventLogClient up at call time: every variant then runs the same
        # view, the same validation and the same transaction, and differs only in the publish.
        services.EventLogClient = VariantEventLogClient
