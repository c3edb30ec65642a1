"""Django's settings module for every role (web, worker, beat, migrate, relay).

Each module of app/config/blocks/ is one block of settings read from the environment, with no
side effect; this module assembles them and switches on the integrations that need it (structlog
always, Sentry only when SENTRY_CONFIG_DSN is set). gunicorn's master reads only the blocks it
needs (app/config/gunicorn.py), and the exec probes only theirs (app/config/probe.py).
"""

from .blocks.api import *
from .blocks.celery import *
from .blocks.clickhouse import *
from .blocks.django import *
from .blocks.django import APP_VERSION, ENVIRONMENT_NAME
from .blocks.logging import *
from .blocks.metrics import *
from .blocks.outbox import *
from .blocks.probes import *
from .blocks.security import *
from .blocks.sentry import *
from .blocks.sentry import SENTRY_CONFIG_DSN, SENTRY_TRACES_SAMPLE_RATE
from .blocks.web import *
from .logging import configure_structlog
from .sentry import sentry_init

configure_structlog()
if SENTRY_CONFIG_DSN:
    sentry_init(
        dsn=SENTRY_CONFIG_DSN,
        environment=ENVIRONMENT_NAME,
        release=APP_VERSION,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
