"""`make e2e`: one release of the chart, run as containers, lives through its lifecycle under a
steady registration load, and every event is counted.

Steps (each prints its duration and counts: requests sent, 2xx/4xx/5xx, connection errors by
kind, events relayed so far, backlog):
 1. install, wait as `helm install --wait` would, `helm test`;
 2. start the steady load (it runs until the end);
 3. upgrade to a new image version with a config change (the migrate Job reruns, roles roll);
 4. scale workers 1 → 3 → 1; rollout restart of web, then of worker; a large backlog, and
    worker pods deleted while a relay holds a batch;
 5. a ClickHouse outage longer than the whole retry schedule, then recovery; a Redis outage;
    PostgreSQL sessions terminated (pg_terminate_backend) — each timed to hit work in flight;
 6. beat started twice by mistake, then removed;
 7. the final accounting table. Exit status 1 naming each failed line.

Run: `make e2e` (or `python -m tests.e2e` once the image is built). The shortened timings are
in tests/e2e/lifecycle-values.yaml and explained in docs/deployment.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.config.env import PROJECT_ROOT
from tests.e2e.accounting import Checks, ClickHouse, Postgres
from tests.e2e.faults import (
    SessionKill,
    Window,
    WorkerKill,
    kill_workers_while_leased,
    terminate_postgres_sessions,
    wait_for,
)
from tests.e2e.load import Outcome, RegistrationLoad, failures, summarize


def say(*lines: str, stream=sys.stdout) -> None:
    """Print progress at once (the run is long; its output is the report)."""
    stream.write("\n".join(lines) + "\n")
    stream.flush()


VALUES = Path(__file__).with_name("lifecycle-values.yaml")
E2E_VALUES = yaml.safe_load(VALUES.read_text())
LEASE_SECONDS = float(E2E_VALUES["config"]["OUTBOX_LEASE_SECONDS"])
BACKOFF_MAX = float(E2E_VALUES["config"]["OUTBOX_BACKOFF_MAX"])
# The whole retry schedule of the relay's breaker (OUTBOX_BACKOFF_BASE 1 s, doubling to the cap),
# before jitter: 1 + 2 + 4 + 8 s. The outage lasts well beyond it.
RETRY_SCHEDULE_SECONDS = 1 + 2 + 4 + 8
CLICKHOUSE_OUTAGE_SECONDS = 2 * RETRY_SCHEDULE_SECONDS
REDIS_OUTAGE_SECONDS = 15.0
POSTGRES_KILL_ROUNDS_MAX = 10
APPLICATION_NAME = "die-hard"  # DATABASE_APPLICATION_NAME's default: the chart leaves it
UPGRADE_CONFIG = {"config.LOG_LEVEL": "WARNING"}
BACKLOG_BURST = 400
# The 503 docs/api.md documents for a PostgreSQL session lost mid-request.
DOCUMENTED_503 = "The database is unavailable"
# …and for a registration that found no free hashing slot (REGISTRATION_CONCURRENT_HASHES).
HASHING_BUSY = "Too many registrations at once"


@dataclass
class Run:
    cluster: object  # tests.e2e.cluster.Cluster
    services: object  # tests.e2e.cluster.BackingServices
    load: RegistrationLoad
    postgres: Postgres
    clickhouse: ClickHouse
    checks: Checks = field(default_factory=Checks)
    durations: dict[str, float] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    worker_kills: list[WorkerKill] = field(default_factory=list)
    session_kills: list[SessionKill] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    current: str = ""  # the step running

    def relayed(self) -> int:
        return self.clickhouse.user_created(self.load.email_domain).rows

    def counts(self, since: float) -> str:
        step = [o for o in self.load.snapshot() if o.finished >= since]
        failed = Counter(f"{o.kind} {o.error or o.body}"[:160] for o in failures(step))
        details = "".join(f"\n      {count} x {text}" for text, count in failed.most_common(3))
        return (
            f"    requests this step: {summarize(step)}\n"
            f"    requests so far:    {summarize(self.load.snapshot())}\n"
            f"    in flight now {self.load.in_flight()}; events relayed so far "
            f"{self.relayed()}; {self.postgres.outbox()}"
            + (f"\n    failed this step:{details}" if details else "")
        )

    @contextmanager
    def step(self, name: str) -> Iterator[Window]:
        say(f"\n== {name}")
        window = Window(name)
        self.current = name
        self.windows[name] = window
        try:
            yield window
        finally:
            window.close()
            self.durations[name] = window.seconds
            say(f"   ({window.seconds:.1f} s)\n{self.counts(window.start)}")

    def note(self, text: str) -> None:
        say(f"    {text}")
        self.notes.append(text)


def wait_drained(run: Run, *, timeout: float) -> float:
    """Seconds until the outbox is empty (nothing pending, no batch owed)."""
    start = time.time()
    wait_for(
        "an empty outbox",
        lambda: (state := run.postgres.outbox()).pending == 0 and state.batches == 0,
        timeout=timeout,
        every=0.5,
    )
    return time.time() - start


# -- the steps


def install(run: Run, values: Path) -> None:
    with run.step("1. install, wait as helm install --wait, helm test"):
        run.cluster.install(values=[values], timeout=300)
        for component in ("web", "worker", "beat"):
            pods = run.cluster.pods(component)
            run.note(f"{component}: {len(pods)} pod(s), ready {sum(p.ready for p in pods)}")
        run.cluster.helm_test()
        run.note("helm test: passed")


def upgrade_image(image: str) -> str:
    """The same image under a new version's name: what an upgrade changes."""
    return image.rsplit(":", 1)[0] + ":0.1.1-e2e"


def upgrade(run: Run, image: str) -> None:
    new_image = upgrade_image(image)
    subprocess.run(["podman", "tag", image, new_image], check=True)
    with run.step(f"3. upgrade to {new_image} with LOG_LEVEL=WARNING, under load"):
        rolled = run.cluster.upgrade(values=[VALUES], set_values=UPGRADE_CONFIG, image=new_image)
        run.note(f"rolled: {', '.join(rolled)}")
        run.checks.add(
            "upgrade: migrate Job ran again",
            "a migrate Job in the rolled list",
            ", ".join(rolled),
            any("migrate" in name for name in rolled),
        )
        for component in ("web", "worker", "beat"):
            run.checks.add(
                f"upgrade: {component} rolled",
                component,
                ", ".join(rolled),
                any(component in name for name in rolled),
            )
        run.windows["web rollout: upgrade"] = run.windows[list(run.windows)[-1]]


def scale_and_restart(run: Run) -> None:
    with run.step("4a. scale workers 1 → 3 → 1"):
        run.cluster.scale("worker", 3)
        run.note(f"workers ready: {sum(p.ready for p in run.cluster.pods('worker'))}")
        run.cluster.scale("worker", 1)
        left = [p for p in run.cluster.pods("worker") if not p.terminating]
        run.note(f"workers: {len(left)}")
        run.checks.equal("scale 3 → 1: one worker left", 1, len(left))
    with run.step("4b. rollout restart web, under load") as window:
        run.cluster.rollout_restart("web")
        run.windows["web rollout: restart"] = window
    with run.step("4c. rollout restart worker, under load"):
        run.cluster.rollout_restart("worker")


def backlog_and_worker_kills(run: Run) -> None:
    proxy = run.services.clickhouse.proxy
    with run.step(f"4d. large backlog ({BACKLOG_BURST} burst), worker pods deleted mid-batch"):
        run.cluster.scale("worker", 3)  # one live relay left for the last of three kills
        proxy.cut()  # hold ClickHouse off while the backlog builds
        burst_window = Window("burst")
        burst = run.load.burst(BACKLOG_BURST, threads=2)
        run.windows["burst"] = burst_window.close()
        run.note(f"burst: {summarize(burst)}; {run.postgres.outbox()}")
        # ClickHouse back, but accepting and never answering: each relay's trial insert hangs
        # (up to CLICKHOUSE_INSERT_TIMEOUT) holding its leased batch — the moment to kill.
        proxy.restore()
        proxy.stall()
        kills = kill_workers_while_leased(
            run.cluster, run.postgres, kills=3, in_flight_requests=run.load.in_flight, timeout=150
        )
        run.worker_kills.extend(kills)
        for kill in kills:
            batches = ", ".join(f"{b.id[:8]} ({b.rows} rows)" for b in kill.leased)
            how = "gracefully" if kill.graceful else "without grace (SIGKILL)"
            run.note(f"deleted {kill.pod} {how} while leased: {batches}")
        # ClickHouse answers again; one insert's reply is lost after ClickHouse stored it, so
        # its batch is re-sent under the same token (a duplicate only if deduplication failed).
        proxy.drop_replies(1, marker=b"INSERT")
        proxy.restore()
        drained = wait_drained(run, timeout=120)
        run.note(
            f"backlog drained {drained:.1f} s after release; replies dropped "
            f"{proxy.replies_dropped}"
        )
        run.cluster.scale("worker", 1)


def clickhouse_outage(run: Run) -> None:
    proxy = run.services.clickhouse.proxy
    with run.step(
        f"5a. ClickHouse outage {CLICKHOUSE_OUTAGE_SECONDS} s "
        f"(whole retry schedule {RETRY_SCHEDULE_SECONDS} s), then recovery"
    ) as window:
        run.windows["clickhouse outage"] = window
        proxy.stall()  # first catch a batch mid-relay…
        leased = wait_for("a batch mid-relay", run.postgres.leased_batches, timeout=30)
        in_flight = run.load.in_flight()
        proxy.cut()  # …then cut: its insert is reset under it
        run.note(
            f"cut with batch(es) mid-relay: {', '.join(b.id[:8] for b in leased)}; "
            f"requests in flight {in_flight}"
        )
        run.checks.add(
            "ClickHouse cut hit a batch mid-relay",
            "≥ 1 leased batch",
            str(len(leased)),
            bool(leased),
        )
        time.sleep(CLICKHOUSE_OUTAGE_SECONDS)
        backlog = run.postgres.outbox()
        run.note(f"at the end of the outage: {backlog}")
        run.checks.equal("ClickHouse outage: nothing dead-lettered", 0, backlog.dead_lettered)
        relayed_before = run.relayed()
        proxy.restore()
        recovered = time.time()
        window.close()
        # docs/outbox.md: a relay notices ClickHouse is back at its next trial, within its
        # breaker's current delay: at most OUTBOX_BACKOFF_MAX (+ a beat tick and this poll).
        wait_for(
            "an event relayed after recovery",
            lambda: run.relayed() > relayed_before,
            timeout=BACKOFF_MAX + 30,
            every=0.25,
        )
        resumed = time.time() - recovered
        drained = wait_drained(run, timeout=120) + resumed
        run.note(
            f"relaying resumed {resumed:.1f} s after recovery; the backlog of "
            f"{backlog.pending} drained {drained:.1f} s after it"
        )
        run.checks.add(
            "ClickHouse recovery: relaying resumed within the breaker's cap (docs/outbox.md)",
            f"≤ {BACKOFF_MAX:.0f} s + 2 s",
            f"{resumed:.1f} s",
            resumed <= BACKOFF_MAX + 2,
        )
        run.windows["clickhouse recovery"] = Window("clickhouse recovery", recovered)


def redis_outage(run: Run) -> None:
    proxy = run.services.redis.proxy
    with run.step(f"5b. Redis outage {REDIS_OUTAGE_SECONDS:.0f} s") as window:
        run.windows["redis outage"] = window
        wait_for("requests in flight", run.load.in_flight, timeout=10, every=0.01)
        in_flight = run.load.in_flight()
        proxy.cut()
        run.note(f"cut with requests in flight: {in_flight}")
        run.checks.add("Redis cut hit requests in flight", "≥ 1", str(in_flight), in_flight > 0)
        time.sleep(REDIS_OUTAGE_SECONDS)
        run.note(f"at the end of the outage: {run.postgres.outbox()}")
        proxy.restore()
        window.close()
        drained = wait_drained(run, timeout=60)
        run.note(f"backlog drained {drained:.1f} s after Redis came back")


def postgres_sessions_terminated(run: Run) -> None:
    """pg_terminate_backend on every die-hard session, at least three times and until a kill
    has hit work in flight: a session mid-statement or mid-transaction, or a request that then
    answered the documented 503 (at most ten rounds)."""
    with run.step("5c. PostgreSQL: pg_terminate_backend on every die-hard session") as window:
        run.windows["postgres cut"] = window

        def unavailable() -> int:
            during = run.load.window(window.start, time.time())
            return sum(1 for o in during if o.status == 503 and DOCUMENTED_503 in o.body)

        kills: list[SessionKill] = []
        while len(kills) < POSTGRES_KILL_ROUNDS_MAX:
            (kill,) = terminate_postgres_sessions(
                run.postgres, APPLICATION_NAME, rounds=1, in_flight_requests=run.load.in_flight
            )
            kills.append(kill)
            states = Counter(state or "?" for _pid, state, _query in kill.sessions)
            run.note(
                f"terminated {len(kill.sessions)} sessions ({dict(states)}), "
                f"requests in flight {kill.in_flight_requests}"
            )
            hit = any(k.busy for k in kills) or unavailable() > 0
            if len(kills) >= 3 and hit:
                break
        run.session_kills.extend(kills)
        time.sleep(3)  # let requests started during the cut finish inside the window
        busy, answered = sum(k.busy for k in kills), unavailable()
        run.checks.add(
            "PostgreSQL cut hit work in flight (busy sessions, requests answered 503)",
            "≥ 1",
            f"{busy} busy sessions, {answered} x 503 in {len(kills)} kills",
            busy + answered > 0,
        )


def beat_twice(run: Run) -> None:
    with run.step("6. beat started twice by mistake, then removed"):
        extra = run.cluster.run_extra_pod("beat")
        wait_for(
            "the second beat ready",
            lambda: any(p.name == extra and p.ready for p in run.cluster.pods("beat")),
            timeout=90,
            every=0.5,
        )
        run.note(f"beat pods: {', '.join(p.name for p in run.cluster.pods('beat'))}")
        time.sleep(10)
        run.cluster.delete_pod(extra)
        wait_for(
            "the second beat gone",
            lambda: all(p.name != extra for p in run.cluster.pods("beat")),
            timeout=60,
            every=0.5,
        )
        run.note(f"beat pods after removal: {', '.join(p.name for p in run.cluster.pods('beat'))}")


# -- the final accounting


def in_window(outcome: Outcome, windows: list[Window]) -> bool:
    return any(outcome.overlaps(w.start, w.closed_end) for w in windows)


def account(run: Run) -> None:
    with run.step("7. final accounting"):
        run.load.stop()
        drained = wait_drained(run, timeout=90)
        run.note(f"outbox drained {drained:.1f} s after the load stopped")
    checks = run.checks
    outcomes = run.load.snapshot()
    domain = run.load.email_domain
    created = {o.email for o in outcomes if o.status == 201}
    users = run.postgres.user_emails(domain)
    events = run.clickhouse.user_created(domain)
    outbox = run.postgres.outbox()

    checks.equal("users in PostgreSQL = 201 responses", len(created), len(users))
    checks.equal("users without a 201 (answer lost)", 0, len(users - created))
    checks.equal("201 responses without a user", 0, len(created - users))
    checks.equal(
        "distinct user_created events in ClickHouse = users", len(users), events.distinct_users
    )
    checks.equal("ClickHouse event emails = users' emails", True, events.emails == users)
    checks.equal(
        "plain count() = distinct events (no duplicates, no FINAL)",
        events.distinct_events,
        events.rows,
    )
    checks.equal("plain count() = users", len(users), events.rows)
    checks.equal("outbox empty (pending rows)", 0, outbox.pending)
    checks.equal("outbox empty (owed batches)", 0, outbox.batches)
    checks.equal("nothing dead-lettered", 0, outbox.dead_lettered)

    pg_window = [run.windows["postgres cut"]]
    failed = failures(outcomes)
    # The burst overloads web on purpose: a registration finding no free hashing slot gets the
    # 503 docs/api.md documents ("Bounded hashing"). Counted, and allowed during the burst only.
    busy = [o for o in failed if o.status == 503 and HASHING_BUSY in o.body]
    busy_outside = [o for o in busy if not in_window(o, [run.windows["burst"]])]
    checks.add(
        "hashing-busy 503s (docs/api.md) only during the burst",
        "only in the burst",
        f"{len(busy)} in the burst, {len(busy_outside)} outside",
        not busy_outside,
    )
    failed = [o for o in failed if o not in busy or o in busy_outside]
    outside = [o for o in failed if not in_window(o, pg_window)]
    checks.add(
        "no failed request outside the PostgreSQL cut",
        "none",
        summarize(outside) if outside else "none",
        not outside,
    )
    inside = [o for o in failed if in_window(o, pg_window)]
    undocumented = [o for o in inside if not (o.status == 503 and DOCUMENTED_503 in o.body)]
    checks.add(
        "during the PostgreSQL cut: documented 503s only (docs/api.md)",
        "503 database unavailable",
        summarize(inside) if inside else "none",
        not undocumented,
    )
    for name in ("web rollout: upgrade", "web rollout: restart"):
        during = run.load.window(run.windows[name].start, run.windows[name].closed_end)
        bad = failures(during)
        checks.add(
            f"{name}: no failed request (no 5xx, reset, refused)",
            "none",
            f"{summarize(during)}",
            not bad and len(during) > 0,
        )

    checks.add(
        "worker kills hit leased batches",
        "3 kills, each with ≥ 1 leased batch",
        f"{len(run.worker_kills)} kills, leased {[len(k.leased) for k in run.worker_kills]}",
        len(run.worker_kills) == 3 and all(k.leased for k in run.worker_kills),
    )
    probe_checks(run)

    say("\n== final accounting\n" + checks.table())
    say("\n== durations")
    for name, seconds in run.durations.items():
        say(f"{seconds:8.1f} s  {name}")


def probe_checks(run: Run) -> None:
    events = list(run.cluster.probe_events)
    checks = run.checks
    by: Counter[tuple[str, str, bool]] = Counter((e.container, e.kind, e.passed) for e in events)
    say("\n== probe outcomes (component, probe, passed: count)")
    for key, count in sorted(by.items()):
        say(f"    {key}: {count}")
    liveness_failures = [e for e in events if e.kind == "liveness" and not e.passed]
    for event in liveness_failures:
        at = time.strftime("%H:%M:%S", time.gmtime(event.time))
        steps = [w.name for w in run.windows.values() if w.start <= event.time <= w.closed_end]
        say(f"    liveness failed {at} UTC ({', '.join(steps)}) {event.pod}: {event.detail}")
    checks.add(
        "no liveness probe failed (no dependency outage restarts a pod)",
        "0",
        str(len(liveness_failures)),
        not liveness_failures,
    )

    def during(name: str, component: str, kind: str) -> list:
        window = run.windows[name]
        return [
            e
            for e in events
            if e.container == component
            and e.kind == kind
            and window.start <= e.time <= window.closed_end
        ]

    for outage in ("clickhouse outage", "redis outage"):
        web_ready = during(outage, "web", "readiness")
        checks.add(
            f"{outage}: web readiness passes (documented: ok)",
            "all passed",
            f"{sum(e.passed for e in web_ready)}/{len(web_ready)}",
            bool(web_ready) and all(e.passed for e in web_ready),
        )
        worker_ready = during(outage, "worker", "readiness")
        checks.add(
            f"{outage}: worker readiness fails (documented: fails)",
            "≥ 1 failure",
            f"{sum(not e.passed for e in worker_ready)} of {len(worker_ready)}",
            any(not e.passed for e in worker_ready),
        )
        beat_live = during(outage, "beat", "liveness")
        checks.add(
            f"{outage}: beat liveness passes (documented: ok)",
            "all passed",
            f"{sum(e.passed for e in beat_live)}/{len(beat_live)}",
            all(e.passed for e in beat_live),
        )
    final_worker = [e for e in events if e.container == "worker" and e.kind == "readiness"][-3:]
    checks.add(
        "worker ready again at the end",
        "passed",
        str([e.passed for e in final_worker]),
        bool(final_worker) and final_worker[-1].passed,
    )


def default_image() -> str:
    """localhost/die-hard:<the project's version>, as `make image` tags it."""
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as pyproject:
        return f"localhost/die-hard:{tomllib.load(pyproject)['project']['version']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=default_image(), help="default: %(default)s")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)

    from tests.e2e.backing import BackingServices  # the runner
    from tests.e2e.cluster import Cluster

    started = time.time()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="die-hard-e2e-"))
    with BackingServices(workdir / "services") as services:
        cluster = Cluster(workdir / "cluster", args.image, services)
        load = RegistrationLoad(lambda: cluster.service_address("http"), threads=2, pause=0.1)
        run = Run(
            cluster,
            services,
            load,
            Postgres(services.postgres.url_for_host),
            ClickHouse(services.clickhouse.url_for_host),
        )
        try:
            install(run, VALUES)
            with run.step("2. steady registration load starts"):
                load.start()
                time.sleep(5)
            upgrade(run, args.image)
            scale_and_restart(run)
            backlog_and_worker_kills(run)
            clickhouse_outage(run)
            redis_outage(run)
            postgres_sessions_terminated(run)
            beat_twice(run)
            account(run)
        except Exception as error:  # a step that could not finish is a failed check too
            run.checks.add(
                f"step finished: {run.current or '?'}",
                "finished",
                f"{type(error).__name__}: {error}",
                False,
            )
            load.stop()
            say("\n== final accounting (interrupted)\n" + run.checks.table())
        finally:
            cluster.close()
            # Only the upgrade's name: `podman untag IMAGE` alone would drop every name of it.
            new_image = upgrade_image(args.image)
            subprocess.run(["podman", "untag", new_image, new_image], check=False)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"\ntotal {time.time() - started:.1f} s")
    failed = run.checks.failed()
    for check in failed:
        say(
            f"FAILED: {check.name}: expected {check.expected}, got {check.actual}",
            stream=sys.stderr,
        )
    return 1 if failed else 0
