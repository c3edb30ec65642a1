"""The Celery app of the worker and beat roles: `celery --app app.config.celery worker|beat`.

Every Django process creates it too, when Django is ready (app/config/apps.py), so that the relay
wake-up and shared tasks find it as Celery's current app. The exec probes load neither.
"""

import os

from celery import Celery
from celery.signals import (
    beat_init,
    import_modules,
    setup_logging,
    worker_init,
    worker_process_shutdown,
    worker_shutting_down,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.config.settings")


# Connected before the app exists, so before Celery's Django fixup, whose receiver of the same
# signal runs django.setup() and so imports the task modules and prometheus_client.
@import_modules.connect
def _share_metrics_between_processes(sender: Celery, **_kwargs: object) -> None:
    """In the worker and beat (the processes that initialise a worker's loader), before any
    metric exists: the prefork pool's children record their metrics in files that the main
    process serves (app/core/metrics_server.py)."""
    from django.conf import settings

    from app.core.metrics_server import metrics_multiprocess_prepare

    if sender.loader.worker_initialized and settings.METRICS_ADDRESS is not None:
        try:
            metrics_multiprocess_prepare("celery")
        except RuntimeError as error:
            # Celery logs and ignores what a signal receiver raises, except this.
            raise SystemExit(str(error)) from error


def _serve_metrics(role: str) -> None:
    from app.core.metrics_server import MetricsBindError
    from app.outbox.metrics import outbox_role_metrics_serve

    try:
        outbox_role_metrics_serve(role=role)
    except MetricsBindError as error:
        raise SystemExit(str(error)) from error


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
    _serve_metrics("worker")


@worker_process_shutdown.connect
def _forget_pool_process_gauges(pid: int, **_kwargs: object) -> None:
    from app.core.metrics_server import metrics_process_dead

    metrics_process_dead(pid)


@worker_shutting_down.connect
def _tell_tasks_to_stop(**_kwargs: object) -> None:
    """Running relay tasks stop between batches once this marker exists (see outbox.tasks)."""
    from app.core.heartbeat import touch, worker_stop_marker

    touch(worker_stop_marker(os.getpid()))


@beat_init.connect
def _start_beat_health_reporter(**_kwargs: object) -> None:
    from app.core.heartbeat import Heartbeat

    Heartbeat("beat").start()
    _serve_metrics("beat")
