"""Settings for every role (web, worker, beat, migrate), read from the environment only.

Each module below is one block; integrations switch themselves off when their variable is empty.
"""

from .celery import *
from .clickhouse import *
from .django import *
from .logging import *
from .outbox import *
from .security import *
from .sentry import *
