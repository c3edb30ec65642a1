"""Health of the web role: Kubernetes probes and a status page, on django-health-check's checks.

    /healthz/live     liveness: the process serves requests. Checks no dependency, so a database
                      blip never gets every pod restarted.
    /healthz/startup  startup: the application has loaded (the same answer as liveness; a
                      separate path so its generous timing reads clearly in the chart).
    /healthz/ready    readiness: PostgreSQL answers and every migration is applied. Redis does
                      not count (registrations work without it: the relay wake-up is best
                      effort) and ClickHouse does not either (web never talks to it).

The status page (`/healthz/status`: every dependency and the outbox backlog) is served by
app.outbox.views with the checks defined here.

The three probes are answered by `HealthProbeMiddleware` before any other middleware, so they
work with any `Host` header (the kubelet sends the pod IP) and over plain HTTP even when
ALLOWED_HOSTS and SECURE_SSL_REDIRECT are strict, and they skip sessions and authentication.
"""

import asyncio
import dataclasses
import datetime
from collections.abc import Iterable
from typing import ClassVar

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable

from app.clickhouse.client import clickhouse_ping


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration of this code is applied: new pods stay unready until `migrate` ran."""

    alias: str = DEFAULT_DB_ALIAS
    # Migrations only ever move forward for a running process: once applied, stop asking.
    _all_applied: ClassVar[bool] = False

    def run(self) -> None:
        if MigrationsApplied._all_applied:
            return
        connection = connections[self.alias]
        try:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as error:
            raise ServiceUnavailable("cannot read the migration state") from error
        finally:
            connection.close()
        if pending:
            raise ServiceUnavailable(f"{len(pending)} migration(s) not applied yet")
        MigrationsApplied._all_applied = True


@dataclasses.dataclass
class ClickHouse(HealthCheck):
    def run(self) -> None:
        try:
            clickhouse_ping(timeout=2)
        except Exception as error:
            raise ServiceUnavailable("unreachable") from error


READINESS_CHECKS = {"database": Database, "migrations": MigrationsApplied}
STATUS_CHECKS = {
    "database": Database,
    "migrations": MigrationsApplied,
    "redis": Cache,
    "clickhouse": ClickHouse,
}


def run_checks(
    checks: dict[str, type[HealthCheck]], *, timeout: float | None = None
) -> dict[str, HealthCheckResult]:
    """Run the checks concurrently, each within its timeout (django-health-check's runner;
    `timeout` seconds when given, else each check's default)."""
    instances = [check() for check in checks.values()]
    if timeout:
        for instance in instances:
            instance.timeout = datetime.timedelta(seconds=timeout)

    async def gather() -> list[HealthCheckResult]:
        return await asyncio.gather(*(instance.get_result() for instance in instances))

    return dict(zip(checks, async_to_sync(gather)(), strict=True))


def check_states(results: dict[str, HealthCheckResult], *, detailed: bool) -> dict[str, str]:
    # Error texts can name hosts and ports: only for staff or in development.
    return {
        name: "ok" if not result.error else (str(result.error) if detailed else "unavailable")
        for name, result in results.items()
    }


def text_response(lines: Iterable[str], *, healthy: bool) -> HttpResponse:
    response = HttpResponse(
        "\n".join(lines) + "\n",
        content_type="text/plain; charset=utf-8",
        status=200 if healthy else 503,
    )
    add_never_cache_headers(response)
    return response


def live(request: HttpRequest) -> HttpResponse:
    return text_response(["ok"], healthy=True)


def ready(request: HttpRequest) -> HttpResponse:
    results = run_checks(READINESS_CHECKS)
    healthy = not any(result.error for result in results.values())
    states = check_states(results, detailed=settings.DEBUG)
    return text_response([f"{name}: {state}" for name, state in states.items()], healthy=healthy)


PROBES = {
    "/healthz/live": live,
    "/healthz/startup": live,
    "/healthz/ready": ready,
}
