"""The Celery app of the worker and beat roles: `celery --app app.config.celery worker|beat`.

Every Django process creates it too, when Django is ready (app/config/apps.py), so that the relay
wake-up and shared tasks find it as Celery's current app. The exec probes load neither.
"""

import os

from celery import Celery
from celery.signals import beat_init, setup_logging, worker_init, worker_shutting_down

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.config.settings")

celery_app = Celery("die_hard")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**_kwargs: object) -> None:
    """Keep Celery from installing its own handlers: Django's LOGGING (structlog) applies."""


@worker_init.connect
def _start_worker_health_reporter(**_kwargs: object) -> None:
    from app.core.dependencies import DEPENDENCY_CHECKS
    from app.core.heartbeat import HealthReporter, Heartbeat, worker_stop_marker

    worker_stop_marker(os.getpid()).unlink(missing_ok=True)
    Heartbeat("worker").start()
    HealthReporter("worker", DEPENDENCY_CHECKS).start()


@worker_shutting_down.connect
def _tell_tasks_to_stop(**_kwargs: object) -> None:
    """Running relay tasks stop between batches once this marker exists (see outbox.tasks)."""
    from app.core.heartbeat import touch, worker_stop_marker

    touch(worker_stop_marker(os.getpid()))


@beat_init.connect
def _start_beat_health_reporter(**_kwargs: object) -> None:
    from app.core.heartbeat import Heartbeat

    Heartbeat("beat").start()
