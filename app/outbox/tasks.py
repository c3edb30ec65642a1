from celery import shared_task
from django.conf import settings

from app.core.heartbeat import worker_is_stopping

from .services import outbox_relay_drain
from .wakeup import RELAY_TASK_NAME


# Not acks_late: a lost tick needs no redelivery, the next tick or wake-up does the work.
# The soft limit only backs up the time budget, which ends the drain between batches.
@shared_task(
    name=RELAY_TASK_NAME,
    ignore_result=True,
    acks_late=False,
    soft_time_limit=settings.OUTBOX_RELAY_TIME_BUDGET + 60,
)
def outbox_relay() -> int:
    """Drain the outbox until it is empty, the time budget is spent or the worker is shutting
    down (checked between batches, so a SIGTERM never cuts a batch short)."""
    return outbox_relay_drain(should_stop=worker_is_stopping).relayed
