from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The wiring as a Django app: it creates the Celery app once Django is ready."""

    name = "app.config"
    label = "config"

    def ready(self) -> None:
        # Celery's current app from here on: the relay wake-up and shared tasks send through it.
        from . import celery  # noqa: F401
