"""Where events go: a ClickHouse server over HTTP(S), or the embedded engine (chdb://path)."""

import re
from urllib.parse import quote, urlparse

from django.core.exceptions import ImproperlyConfigured

from .env import BASE_DIR, DEBUG, env


def _clickhouse_url_from_seed_variables() -> str | None:
    """The seed configured ClickHouse with separate variables; honour them when the URL is unset."""
    host = env.str("CLICKHOUSE_HOST", default="")
    if not host:
        return None
    port = env.int("CLICKHOUSE_PORT", default=8123)
    user = quote(env.str("CLICKHOUSE_USER", default="default"), safe="")
    password = quote(env.str("CLICKHOUSE_PASSWORD", default=""), safe="")
    scheme = "https" if port in (443, 8443) else "http"
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return f"{scheme}://{credentials}{host}:{port}/"


CLICKHOUSE_URL = env.str("CLICKHOUSE_URL", default="") or _clickhouse_url_from_seed_variables()
if not CLICKHOUSE_URL:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set the CLICKHOUSE_URL environment variable (or CLICKHOUSE_HOST) when DEBUG=false"
        )
    CLICKHOUSE_URL = f"chdb://{BASE_DIR / '.data' / 'clickhouse'}"
if not CLICKHOUSE_URL.startswith(("http://", "https://", "chdb://")):
    raise ImproperlyConfigured("CLICKHOUSE_URL must start with http://, https:// or chdb://")

# The database holding the events: CLICKHOUSE_DATABASE, else the URL's path, else "default".
CLICKHOUSE_DATABASE = env.str("CLICKHOUSE_DATABASE", default="") or (
    (CLICKHOUSE_URL.startswith("http") and urlparse(CLICKHOUSE_URL).path.strip("/")) or "default"
)
CLICKHOUSE_EVENT_TABLE = env.str("CLICKHOUSE_EVENT_TABLE", default="event_log")
# Set to a cluster name to create replicated tables ON CLUSTER (see README, "ClickHouse").
CLICKHOUSE_CLUSTER = env.str("CLICKHOUSE_CLUSTER", default="")
CLICKHOUSE_CONNECT_TIMEOUT = env.float("CLICKHOUSE_CONNECT_TIMEOUT", default=5.0)
CLICKHOUSE_SEND_RECEIVE_TIMEOUT = env.float("CLICKHOUSE_SEND_RECEIVE_TIMEOUT", default=60.0)
for _name, _value in (
    ("CLICKHOUSE_DATABASE", CLICKHOUSE_DATABASE),
    ("CLICKHOUSE_EVENT_TABLE", CLICKHOUSE_EVENT_TABLE),
):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", _value):
        raise ImproperlyConfigured(f"{_name} must be a plain identifier, got {_value!r}")
