"""The metrics endpoints of the running roles show what happened (issue 10's must-show)."""

import http.client
import re
import socket
import threading
import urllib.request
from collections import defaultdict

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from app.outbox.models import OutboxEvent
from tests.outbox.factories import outbox_rows_create
from tests.support.http import SECURE, register
from tests.support.processes import free_port, wait_until

ROLES = ("web", "worker", "beat")


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted labels: value}} from GET /metrics on `port`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def scrape_or_none(port: int) -> dict[str, dict[tuple, float]] | None:
    try:
        return scrape(port)
    except OSError:
        return None


def metrics_env(role_env: dict[str, str]) -> dict[str, str]:
    """role_env, with this run's Redis database (the backlog measurement is shared there)."""
    redis_database = settings.REDIS_URL.rsplit("/", 1)[1]
    return {
        **role_env,
        "REDIS_URL": re.sub(r"/\d+$", f"/{redis_database}", role_env["REDIS_URL"]),
        "METRICS_OUTBOX_REFRESH_SECONDS": "1",
    }


def get(port: int, path: str) -> int | None:
    """The status of GET `path` on the web role, through the ingress's host; None if refused."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={**SECURE, "Connection": "close"})
        return connection.getresponse().status
    except ConnectionRefusedError:
        return None
    finally:
        connection.close()


def register_all(port: int, emails: list[str], *, clients: int) -> dict[str, str]:
    """Register every address from `clients` threads; a 503 (every hashing slot of a process
    busy, nothing written) is retried, so each address ends registered once."""
    outcomes: dict[str, str] = {}
    queue = list(emails)
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                email = queue.pop()
            outcome = register(port, email)
            while outcome == "503":
                outcome = register(port, email)
            outcomes[email] = outcome

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_after_100_registrations_the_roles_metrics_show_100_relayed_and_nothing_pending(
    start_role, role_env
):
    env = metrics_env(role_env)
    metrics_ports = {role: free_port() for role in ROLES}
    web_port = int(env["WEB_BIND"].rsplit(":", 1)[1])
    started = {
        role: start_role(role, {**env, "METRICS_BIND": f"127.0.0.1:{metrics_ports[role]}"})
        for role in ROLES
    }
    for role in ROLES:
        assert wait_until(lambda role=role: scrape_or_none(metrics_ports[role]), timeout=60), (
            started[role].log()[-3000:]
        )
    assert wait_until(lambda: get(web_port, "/healthz/ready") == 200, timeout=30)

    emails = [f"metrics-{number}@example.com" for number in range(100)]
    outcomes = register_all(web_port, emails, clients=2)
    assert set(outcomes.values()) == {"201"}, outcomes

    assert wait_until(lambda: not OutboxEvent.objects.exists(), timeout=60, interval=0.5), started[
        "worker"
    ].log()[-3000:]

    def relayed_and_pending() -> tuple[float, float | None]:
        scraped = {role: scrape(metrics_ports[role]) for role in ROLES}
        relayed = sum(
            sum(s["die_hard_outbox_relayed_events_total"].values()) for s in scraped.values()
        )
        pending = [
            value
            for s in scraped.values()
            for value in s["die_hard_outbox_pending_events"].values()
        ]
        return relayed, max(pending) if pending else None

    # The backlog gauges refresh every second.
    assert wait_until(lambda: relayed_and_pending() == (100, 0), timeout=15), relayed_and_pending()

    web = scrape(metrics_ports["web"])
    created = (("method", "POST"), ("route", "api/v1/users/"), ("status", "201"))
    assert web["die_hard_http_requests_total"][created] == 100
    assert web["die_hard_http_request_duration_seconds_count"][created[:2]] == 100
    worker, beat = scrape(metrics_ports["worker"]), scrape(metrics_ports["beat"])
    assert worker["die_hard_outbox_relayed_batches_total"][()] >= 1
    assert worker["die_hard_outbox_breaker_state"][()] == 0
    assert worker["die_hard_outbox_relay_failures_total"] == {
        (("reason", "rejected"),): 0,
        (("reason", "unavailable"),): 0,
    }
    # Refreshed every PROBE_INTERVAL (1 s here).
    assert worker["die_hard_heartbeat_age_seconds"][(("role", "worker"),)] < 5
    assert beat["die_hard_heartbeat_age_seconds"][(("role", "beat"),)] < 5
    # Every role that exports the backlog exports the same measurement.
    assert beat["die_hard_outbox_pending_events"][()] == 0


@pytest.mark.django_db(transaction=True)
def test_gunicorn_adds_up_every_worker_process_and_serves_metrics_only_on_its_own_port(
    start_role, role_env
):
    metrics_port = free_port()
    web = start_role(
        "web",
        {
            **role_env,
            "METRICS_BIND": f"127.0.0.1:{metrics_port}",
            "WEB_CONCURRENCY": "2",
            # Each worker is replaced after 6 requests: 20 requests cross several generations
            # of processes, dead ones included.
            "WEB_MAX_REQUESTS": "6",
        },
    )
    web_port = int(role_env["WEB_BIND"].rsplit(":", 1)[1])
    assert wait_until(lambda: scrape_or_none(metrics_port), timeout=30), web.log()[-3000:]

    statuses = [get(web_port, "/healthz/live") for _ in range(20)]
    assert statuses == [200] * 20

    # Not on the public port, not even through the ingress's host.
    assert get(web_port, "/metrics") == 404
    booted = set(re.findall(r"Booting worker with pid: (\d+)", web.log()))
    assert len(booted) >= 4, web.log()[-3000:]  # 2 at the start, then replacements
    live = (("method", "GET"), ("route", "healthz/live"), ("status", "200"))
    assert scrape(metrics_port)["die_hard_http_requests_total"][live] == 20


@pytest.mark.django_db(transaction=True)
def test_a_metrics_port_already_taken_stops_the_role_naming_metrics_bind(start_role, role_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = start_role("web", {**role_env, "METRICS_BIND": f"127.0.0.1:{port}"})

        assert web.wait(timeout=30) != 0
    assert f"METRICS_BIND 127.0.0.1:{port} cannot be served" in web.log()


@pytest.mark.django_db(transaction=True)
def test_the_relay_role_serves_its_counters_heartbeat_and_the_backlog(start_role, role_env):
    outbox_rows_create(25)
    port = free_port()
    relay = start_role("relay", {**metrics_env(role_env), "METRICS_BIND": f"127.0.0.1:{port}"})

    def relayed_and_pending() -> tuple[float, float] | None:
        scraped = scrape_or_none(port)
        if scraped is None or not scraped["die_hard_outbox_pending_events"]:
            return None
        return (
            scraped["die_hard_outbox_relayed_events_total"][()],
            scraped["die_hard_outbox_pending_events"][()],
        )

    assert wait_until(lambda: relayed_and_pending() == (25, 0), timeout=60), relay.log()[-3000:]
    assert scrape(port)["die_hard_heartbeat_age_seconds"][(("role", "relay"),)] < 5
