"""Faults the lifecycle injects, each timed to hit work in flight rather than an idle system.

A fault returns what it hit (leased batches, open requests, killed sessions) so the step can
print it and the final checks can require it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.e2e.accounting import LeasedBatch, Postgres


class NothingInFlight(AssertionError):
    """The fault would have hit an idle system: the step proves nothing."""


def wait_for(what: str, predicate: Callable[[], object], *, timeout: float, every: float = 0.1):
    """The first truthy value of `predicate()`, polled; NothingInFlight naming `what` after
    `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise NothingInFlight(f"{what}: not seen within {timeout:.0f}s")
        time.sleep(every)


@dataclass
class Window:
    """A period of the lifecycle (a rollout, an outage), in time.time() seconds."""

    name: str
    start: float = field(default_factory=time.time)
    end: float | None = None

    def close(self) -> Window:
        self.end = time.time()
        return self

    @property
    def closed_end(self) -> float:
        return self.end if self.end is not None else time.time()

    @property
    def seconds(self) -> float:
        return self.closed_end - self.start


@dataclass(frozen=True)
class WorkerKill:
    pod: str
    graceful: bool
    leased: tuple[LeasedBatch, ...]  # batches a relay held at the moment of the kill
    in_flight_requests: int


def kill_workers_while_leased(
    cluster,  # tests.e2e.cluster.Cluster
    postgres: Postgres,
    *,
    kills: int,
    in_flight_requests: Callable[[], int],
    timeout: float = 30.0,
) -> list[WorkerKill]:
    """`kills` times: wait until a relay holds a batch, then delete a random worker pod among
    those running now, alternately without grace (the batch stays owed until its lease ends and
    is taken over whole) and gracefully (SIGTERM: the relay stops between batches).

    Only the pods running at the start are candidates: while ClickHouse does not answer, a
    replacement stays in its wait-for-migrations init container (`clickhouse_migrate --check`,
    charts/die-hard/README.md), so it never holds a batch; so run more workers than kills."""
    candidates = {p.name for p in cluster.pods("worker") if p.phase == "Running"}
    done: list[WorkerKill] = []
    seen: set[tuple[str, str]] = set()  # (batch, lease) pairs a kill already hit

    def fresh_leases() -> list[LeasedBatch]:
        return [b for b in postgres.leased_batches() if (b.id, b.leased_until) not in seen]

    for index in range(kills):
        leased = wait_for(
            f"a batch newly leased by a live relay before worker kill {index + 1}",
            fresh_leases,
            timeout=timeout,
            every=0.05,
        )
        seen.update((batch.id, batch.leased_until) for batch in leased)
        # Not necessarily ready: with ClickHouse stalled the workers are unready, as documented
        # (docs/runtime.md), and relay all the same.
        pods = [
            p
            for p in cluster.pods("worker")
            if p.name in candidates and p.phase == "Running" and not p.terminating
        ]
        if not pods:
            raise NothingInFlight(f"no worker pod left to kill for kill {index + 1}")
        victim = random.choice(pods)
        graceful = index % 2 == 1
        requests = in_flight_requests()
        cluster.delete_pod(victim.name, grace=graceful)
        done.append(WorkerKill(victim.name, graceful, tuple(leased), requests))
    return done


@dataclass(frozen=True)
class SessionKill:
    sessions: tuple[tuple[int, str, str], ...]  # (pid, state, query) as they were
    in_flight_requests: int

    @property
    def busy(self) -> int:
        """Sessions caught in a statement or a transaction."""
        return sum(1 for _pid, state, _query in self.sessions if state not in ("idle", ""))


def terminate_postgres_sessions(
    postgres: Postgres,
    application_name: str,
    *,
    rounds: int,
    in_flight_requests: Callable[[], int],
    timeout: float = 30.0,
) -> list[SessionKill]:
    """`rounds` times: wait until requests are open and a die-hard session is busy, then
    pg_terminate_backend every die-hard session."""
    kills: list[SessionKill] = []
    for index in range(rounds):

        def busy() -> bool:
            if not in_flight_requests():
                return False
            sessions = postgres.sessions(application_name)
            return any(state not in ("idle", "") for _pid, state, _query in sessions)

        wait_for(
            f"a busy die-hard session with requests open (round {index + 1})",
            busy,
            timeout=timeout,
            every=0.02,
        )
        requests = in_flight_requests()
        sessions = postgres.terminate(application_name)
        kills.append(SessionKill(tuple(sessions), requests))
        time.sleep(1.0)
    return kills
