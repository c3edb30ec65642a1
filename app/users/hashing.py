"""Hashing passwords without letting registrations take every request thread.

A hash is deliberately costly. Each web process hashes at most REGISTRATION_CONCURRENT_HASHES
passwords at once; a registration that finds no free slot within a moment gets
PasswordHashingBusy (503 with Retry-After), so the rest of gunicorn's threads stay free for
probes and other requests however many clients register at once.
"""

import os
import threading

from django.conf import settings

from .models import User

# How long a registration waits for a free slot before giving up.
_SLOT_WAIT_SECONDS = 0.25


class PasswordHashingBusy(Exception):
    """This process is already hashing as many passwords as it may."""


class _HashingSlots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphore: threading.BoundedSemaphore | None = None

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._semaphore = None

    def semaphore(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._semaphore is None:
                self._semaphore = threading.BoundedSemaphore(
                    settings.REGISTRATION_CONCURRENT_HASHES
                )
            return self._semaphore


_slots = _HashingSlots()
# gunicorn forks its workers: each starts with all its slots free.
os.register_at_fork(after_in_child=_slots.reset)


def password_set_bounded(user: User, password: str | None) -> None:
    """`user.set_password(password)`, within this process's bound on concurrent hashes."""
    if password is None:
        user.set_unusable_password()
        return
    semaphore = _slots.semaphore()
    if not semaphore.acquire(timeout=_SLOT_WAIT_SECONDS):
        raise PasswordHashingBusy
    try:
        user.set_password(password)
    finally:
        semaphore.release()
