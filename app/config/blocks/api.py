"""The HTTP API: body limits, who a client is, rate limits and the cost of a registration."""

import re

from django.core.exceptions import ImproperlyConfigured

from ..env import env

# The largest request body, in bytes, the API accepts; larger requests get 413.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# The request header that names the client behind a proxy (e.g. `X-Forwarded-For`: its last
# address, the one the ingress saw); empty means the TCP peer (REMOTE_ADDR). Set it only behind
# a proxy that sets it, or clients can pick their own identity.
API_CLIENT_IP_HEADER = env.str("API_CLIENT_IP_HEADER", default="")
# Registrations one client may make, as `N/period` (`10/m`, `100/h`, `5/30s`), or `off`.
REGISTRATION_RATE_PER_CLIENT = env.str("REGISTRATION_RATE_PER_CLIENT", default="10/m")
# Registrations all clients together may make, as `N/period`, or `off`.
REGISTRATION_RATE_GLOBAL = env.str("REGISTRATION_RATE_GLOBAL", default="600/m")
# Passwords one web process hashes at once; more registrations get 503 with Retry-After, so
# probes and other requests always find a free thread.
REGISTRATION_CONCURRENT_HASHES = env.int("REGISTRATION_CONCURRENT_HASHES", default=2)

for _name, _rate in (
    ("REGISTRATION_RATE_PER_CLIENT", REGISTRATION_RATE_PER_CLIENT),
    ("REGISTRATION_RATE_GLOBAL", REGISTRATION_RATE_GLOBAL),
):
    if _rate != "off" and not re.fullmatch(r"\d+/\d*[smhd]", _rate):
        raise ImproperlyConfigured(f"{_name} must look like 10/m, 100/h or 5/30s, or be off")
if REGISTRATION_CONCURRENT_HASHES < 1:
    raise ImproperlyConfigured("REGISTRATION_CONCURRENT_HASHES must be at least 1")

# django-ratelimit: counters in the default cache (Redis); when Redis is away, the limits are
# not enforced rather than every registration failing (app/core/ratelimit.py logs it).
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True
