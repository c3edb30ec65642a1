"""Settings for every role (web, worker, beat, migrate), read from the environment only.

Each module below is one block; integrations switch themselves off when their variable is empty.
"""

from .django import *
from .security import *
from .logging import *
from .celery import *
from .clickhouse import *
from .outbox import *
from .sentry import *
