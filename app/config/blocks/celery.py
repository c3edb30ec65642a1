"""Celery (worker and beat) on Redis: the outbox relay has its own queue and a beat tick."""

from kombu import Queue

from ..env import env
from .django import REDIS_URL
from .outbox import OUTBOX_QUEUE, OUTBOX_RELAY_INTERVAL

# A different broker for Celery. Default: the value of REDIS_URL.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TIMEZONE = "UTC"
# Retry the broker forever at start: a worker started before Redis waits (and says so) instead
# of crash-looping.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None

# The queues a worker consumes, comma-separated. Default: `outbox,default`.
WORKER_QUEUES = env.list("WORKER_QUEUES", default=[OUTBOX_QUEUE, "default"])
CELERY_TASK_QUEUES = [Queue(name) for name in WORKER_QUEUES]
# Worker processes per worker container.
CELERY_WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=2)
# Where beat keeps its schedule state.
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "BEAT_SCHEDULE_FILE",
    default="/tmp/celerybeat-schedule",  # noqa: S108
)

CELERY_TASK_ROUTES = {"outbox.*": {"queue": OUTBOX_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "outbox-relay": {
        "task": "outbox.relay",
        "schedule": OUTBOX_RELAY_INTERVAL,
        # A tick nobody picked up within one interval is dropped: ticks never pile up while
        # the workers are down.
        "options": {"expires": OUTBOX_RELAY_INTERVAL},
    },
}
