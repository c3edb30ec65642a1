import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from .metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
# A client-supplied id is echoed into logs and headers, so only a short, plain token is trusted.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Bind a request id to every log line of the request and echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _ACCEPTABLE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Cleared at the start, not the end: Django's request logger and gunicorn's access log
        # write after this middleware returns and must still carry the id.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class HealthProbeMiddleware:
    """Answer the Kubernetes probes before any other middleware (see app.core.health).

    The kubelet sends the pod IP as `Host` and speaks plain HTTP: host validation and the HTTPS
    redirect must not apply to it, and a probe needs no session, user or CSRF token.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        from .health import PROBES

        self.get_response = get_response
        self.probes = PROBES

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        probe = self.probes.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


# Methods outside this set are counted as `other`: a client must not be able to add series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    """Count and time every request by its URL pattern (never the raw path, whose values a
    client chooses), method and status: die_hard_http_requests_total and
    die_hard_http_request_duration_seconds (app/core/metrics.py). First in the chain, so the
    probes and every early answer (redirects, refused hosts) count too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        route = _route(request)
        method = request.method if request.method in _KNOWN_METHODS else "other"
        HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(route=route, method=method).observe(duration)
        return response


def _route(request: HttpRequest) -> str:
    """The URL pattern that served the request; for an answer given before routing (a probe, a
    redirect), the pattern its path matches; `unmatched` when none does."""
    match = request.resolver_match
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched"
    return match.route or match.view_name or "unmatched"
