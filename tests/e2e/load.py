"""Steady registration load, as clients behind a kube-proxy Service see the web role.

Each request is a unique registration on a NEW TCP connection (a Service balances connections,
not requests), with the headers the ingress would add (tests/support/http.py `SECURE`). Every
outcome is kept with its start and end times: the status code, or the kind of connection error
(refused, reset, timeout, other), so any window of the lifecycle (a rollout, an outage) can be
judged afterwards.
"""

from __future__ import annotations

import http.client
import itertools
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tests.support.http import PASSWORD, send_registration


@dataclass(frozen=True)
class Outcome:
    email: str
    started: float  # time.time()
    finished: float
    status: int | None  # None: no HTTP answer (see `error`)
    error: str | None = None  # refused, reset, timeout, other: <text>
    body: str = ""

    @property
    def kind(self) -> str:
        """`201`, `4xx`… or the connection error's kind."""
        if self.status is None:
            return str(self.error).split(":", 1)[0]
        return str(self.status)

    def overlaps(self, start: float, end: float) -> bool:
        return self.started <= end and self.finished >= start


def classify(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(
        error,
        ConnectionResetError
        | BrokenPipeError
        | ConnectionAbortedError
        | http.client.RemoteDisconnected
        | http.client.IncompleteRead,
    ):
        return "reset"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timeout"
    return "other"


def register_once(address: tuple[str, int], email: str, *, timeout: float) -> Outcome:
    started = time.time()
    connection = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        send_registration(connection, email, PASSWORD)
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        kind = classify(error)
        return Outcome(email, started, time.time(), None, f"{kind}: {error!r}")
    finally:
        connection.close()
    return Outcome(email, started, time.time(), response.status, None, text[:300])


class RegistrationLoad:
    """`threads` clients, each registering back to back with `pause` seconds between requests,
    until `stop()`. `outcomes` grows as answers come; `in_flight()` counts requests open now."""

    def __init__(
        self,
        address: Callable[[], tuple[str, int]],
        *,
        threads: int = 4,
        pause: float = 0.15,
        timeout: float = 30.0,
        run_id: str | None = None,
    ):
        self._address = address
        self._threads_count = threads
        self._pause = pause
        self._timeout = timeout
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.email_domain = f"e2e-{self.run_id}.example.com"
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self.outcomes: list[Outcome] = []

    def next_email(self) -> str:
        return f"user{next(self._counter)}@{self.email_domain}"

    def start(self) -> None:
        for index in range(self._threads_count):
            thread = threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        self._threads.clear()

    def burst(self, count: int, *, threads: int = 8) -> list[Outcome]:
        """`count` registrations as fast as `threads` clients go (recorded like the rest)."""
        emails = [self.next_email() for _ in range(count)]
        chunks = [emails[index::threads] for index in range(threads)]
        workers = [
            threading.Thread(target=self._send_all, args=(chunk,), daemon=True) for chunk in chunks
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        sent = set(emails)
        return [outcome for outcome in self.snapshot() if outcome.email in sent]

    def in_flight(self) -> int:
        with self._lock:
            return len(self._open)

    def _send_all(self, emails: Iterable[str]) -> None:
        for email in emails:
            self._send(email)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._send(self.next_email())
            self._stop.wait(self._pause)

    def _send(self, email: str) -> None:
        with self._lock:
            self._open[email] = time.time()
        outcome = register_once(self._address(), email, timeout=self._timeout)
        with self._lock:
            del self._open[email]
            self.outcomes.append(outcome)

    # -- reading the record

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def created_emails(self) -> set[str]:
        return {outcome.email for outcome in self.snapshot() if outcome.status == 201}

    def window(self, start: float, end: float) -> list[Outcome]:
        return [outcome for outcome in self.snapshot() if outcome.overlaps(start, end)]


def summarize(outcomes: Iterable[Outcome]) -> str:
    """`sent 120: 2xx 118, 4xx 0, 5xx 1, refused 0, reset 1, timeout 0, other 0 (201x118 503x1)`."""
    kinds = Counter(outcome.kind for outcome in outcomes)
    classes: Counter[str] = Counter()
    for kind, count in kinds.items():
        classes[kind[0] + "xx" if kind.isdigit() else kind] += count
    order = ["2xx", "4xx", "5xx", "refused", "reset", "timeout", "other"]
    counted = ", ".join(f"{name} {classes[name]}" for name in order)
    statuses = " ".join(
        f"{kind}x{count}" for kind, count in sorted(kinds.items()) if kind.isdigit()
    )
    return f"sent {sum(kinds.values())}: {counted} ({statuses or 'no answer'})"


def failures(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Outcomes a client would call failed: a 5xx or no answer at all."""
    return [o for o in outcomes if o.status is None or o.status >= 500]
