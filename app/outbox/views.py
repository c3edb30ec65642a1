"""The status page, `GET /healthz/status`: every dependency, the outbox backlog and the relay.

Served through the normal middleware stack (an allowed host, HTTPS in production), unlike the
probes. Anonymous callers learn the overall state only (`status: ok` or `unavailable`, 200 or
503); staff users (or anyone with DEBUG=true) see each check, the backlog and the relay's breaker
and last failure. Text by default; JSON with `Accept: application/json` or `?format=json`.

The checks (PostgreSQL, migrations, Redis, ClickHouse, two aggregates over the outbox) run at
most once per STATUS_CACHE_SECONDS per process, and within STATUS_CHECK_TIMEOUT seconds: a
stream of anonymous requests cannot turn into a stream of queries.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from app.core.health import STATUS_CHECKS, check_states, run_checks, text_response

from .selectors import OutboxStatus, outbox_status

STATUS_CACHE_SECONDS = 5.0
STATUS_CHECK_TIMEOUT = 3.0


@dataclass(frozen=True)
class _Report:
    healthy: bool
    detailed_states: dict[str, str]
    backlog: OutboxStatus | None
    taken_at: float


_cache_lock = threading.Lock()
_cached: _Report | None = None


def status_cache_clear() -> None:
    global _cached
    with _cache_lock:
        _cached = None


def _report() -> _Report:
    global _cached
    with _cache_lock:
        if _cached is not None and time.monotonic() - _cached.taken_at < STATUS_CACHE_SECONDS:
            return _cached
        results = run_checks(STATUS_CHECKS, timeout=STATUS_CHECK_TIMEOUT)
        _cached = _Report(
            healthy=not any(result.error for result in results.values()),
            detailed_states=check_states(results, detailed=True),
            backlog=outbox_status() if not results["database"].error else None,
            taken_at=time.monotonic(),
        )
        return _cached


def status(request: HttpRequest) -> HttpResponse:
    report = _report()
    detailed = settings.DEBUG or request.user.is_staff
    overall = "ok" if report.healthy else "unavailable"
    wants_json = request.GET.get("format") == "json" or "application/json" in request.headers.get(
        "Accept", ""
    )
    if wants_json:
        body: dict[str, object] = {"status": overall}
        if detailed:
            body["checks"] = report.detailed_states
            body["outbox"] = report.backlog.as_dict() if report.backlog else None
        response = JsonResponse(body, status=200 if report.healthy else 503)
        add_never_cache_headers(response)
        return response
    lines = [f"status: {overall}"]
    if detailed:
        lines = [f"{name}: {state}" for name, state in report.detailed_states.items()]
        if report.backlog:
            lines += [f"outbox {line}" for line in report.backlog.summary_lines()]
    return text_response(lines, healthy=report.healthy)
