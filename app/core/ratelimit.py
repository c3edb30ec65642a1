"""Rate limits on the existing Redis (django-ratelimit), failing open.

When Redis cannot be reached the request goes through unlimited, with a warning in the log:
an outage of the cache must not take registrations down with it.
"""

from dataclasses import dataclass

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RateLimited:
    scope: str
    retry_after_seconds: int


def client_address(request: HttpRequest) -> str:
    """Who the client is: the last address in API_CLIENT_IP_HEADER (the one the trusted proxy
    saw), else the TCP peer."""
    if header := settings.API_CLIENT_IP_HEADER:
        forwarded = request.headers.get(header, "")
        if addresses := [part.strip() for part in forwarded.split(",") if part.strip()]:
            return addresses[-1]
    return str(request.META.get("REMOTE_ADDR", ""))


def rate_limit_hit(
    request: HttpRequest, *, group: str, rates: dict[str, str]
) -> RateLimited | None:
    """Count this request against each of `rates` ({"client": "10/m", "global": "600/m"}; a
    rate of `off` is skipped); the first limit it exceeds, or None."""
    keys = {"client": lambda _group, req: client_address(req), "global": lambda *_: "all"}
    for scope, rate in rates.items():
        if rate == "off":
            continue
        try:
            usage = get_usage(
                request, group=f"{group}:{scope}", key=keys[scope], rate=rate, increment=True
            )
        except Exception as error:
            logger.warning("rate_limit_unavailable", group=group, error=str(error))
            return None
        if usage is not None and usage["should_limit"]:
            return RateLimited(scope, max(1, int(usage["time_left"])))
    return None
