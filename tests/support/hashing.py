"""Putting the web process in the state where every password-hashing slot is taken."""

from collections.abc import Iterator
from contextlib import contextmanager

from app.users import hashing


@contextmanager
def hashing_slots_taken(settings) -> Iterator[None]:
    """One slot, held as if another registration were hashing right now."""
    settings.REGISTRATION_CONCURRENT_HASHES = 1
    hashing._slots.reset()
    semaphore = hashing._slots.semaphore()
    assert semaphore.acquire()
    try:
        yield
    finally:
        semaphore.release()
        hashing._slots.reset()
