"""A relay that dies by SIGKILL the moment it reaches a given step of a batch.

    python -m tests.support.scripts.relay_killed_at FUNCTION

FUNCTION names a function of app.outbox.services (for example `_settle`: ClickHouse has
the batch, PostgreSQL has not recorded it). The process kills itself, as the kernel's OOM killer
or a node failure would, exactly there: nothing after that line runs, no handler, no rollback.
"""

import os
import signal
import sys

import django

django.setup()

from app.outbox import services  # noqa: E402


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


setattr(services, sys.argv[1], _die)
services.outbox_relay_batch()
raise SystemExit(f"the relay never reached {sys.argv[1]}")
