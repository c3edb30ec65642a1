import structlog
from celery import shared_task
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection

from app.core.heartbeat import worker_is_stopping

from .services import outbox_relay_drain
from .wakeup import RELAY_TASK_NAME

logger = structlog.get_logger(__name__)


# Not acks_late: a lost tick needs no redelivery, the next tick or wake-up does the work.
# The limits only back up the time budget, which ends the drain between batches; a task killed
# by the hard one leaves its batch to be taken over when the lease runs out.
@shared_task(
    name=RELAY_TASK_NAME,
    ignore_result=True,
    acks_late=False,
    soft_time_limit=settings.OUTBOX_RELAY_TIME_BUDGET + 60,
    time_limit=settings.OUTBOX_RELAY_TIME_BUDGET + 90,
)
def outbox_relay() -> int:
    """Drain the outbox until it is empty, the time budget is spent, the relay backs off or the
    worker is shutting down (checked between batches, so a SIGTERM never cuts a batch short).

    A PostgreSQL error is logged and the tick ends: the next tick tries again."""
    try:
        return outbox_relay_drain(should_stop=worker_is_stopping).relayed
    except DatabaseError as error:
        logger.warning("outbox_relay_database_error", error=str(error))
        connection.close()
        return 0
