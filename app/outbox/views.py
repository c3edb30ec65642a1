"""The status page, `GET /healthz/status`: every dependency, the outbox backlog and the relay.

Served through the normal middleware stack (an allowed host, HTTPS in production), unlike the
probes. Text by default; JSON with `Accept: application/json` or `?format=json`. Error texts,
which can name hosts, only for staff users or with DEBUG=true.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from app.core.health import STATUS_CHECKS, check_states, run_checks, text_response

from .selectors import outbox_status


def status(request: HttpRequest) -> HttpResponse:
    results = run_checks(STATUS_CHECKS)
    healthy = not any(result.error for result in results.values())
    detailed = settings.DEBUG or request.user.is_staff
    states = check_states(results, detailed=detailed)
    backlog = outbox_status() if not results["database"].error else None
    wants_json = request.GET.get("format") == "json" or "application/json" in request.headers.get(
        "Accept", ""
    )
    if wants_json:
        response = JsonResponse(
            {
                "status": "ok" if healthy else "unavailable",
                "checks": states,
                "outbox": backlog.as_dict(detailed=detailed) if backlog else None,
            },
            status=200 if healthy else 503,
        )
        add_never_cache_headers(response)
        return response
    lines = [f"{name}: {state}" for name, state in states.items()]
    if backlog:
        lines += [f"outbox {line}" for line in backlog.summary_lines(detailed=detailed)]
    return text_response(lines, healthy=healthy)
