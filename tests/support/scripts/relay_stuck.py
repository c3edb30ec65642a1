"""`manage.py outbox_relay` whose third batch hangs forever (a stuck loop, not a dead process).

python -m tests.support.scripts.relay_stuck
"""

import threading

import django
from django.core.management import call_command

django.setup()

from app.outbox import services  # noqa: E402
from app.outbox.services import RelayBatchResult  # noqa: E402

batches = 0


def _batch_that_hangs_the_third_time(**_kwargs: object) -> RelayBatchResult:
    global batches
    batches += 1
    if batches >= 3:
        threading.Event().wait()
    return RelayBatchResult()


services.outbox_relay_batch = _batch_that_hangs_the_third_time
call_command("outbox_relay", "--interval", "0.2")
