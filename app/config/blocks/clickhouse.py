"""Where events go: a ClickHouse server over HTTP(S), or the embedded engine (chdb://path)."""

import re
from urllib.parse import quote, urlparse

from django.core.exceptions import ImproperlyConfigured

from ..env import DEBUG, PROJECT_ROOT, env


def _clickhouse_url_from_host_variables() -> str | None:
    """The URL named by CLICKHOUSE_HOST and its companions, when CLICKHOUSE_URL is unset."""
    # The ClickHouse server's host name; used only when CLICKHOUSE_URL is unset.
    host = env.str("CLICKHOUSE_HOST", default="")
    if not host:
        return None
    # With CLICKHOUSE_HOST: the HTTP(S) port (443 or 8443 means HTTPS).
    port = env.int("CLICKHOUSE_PORT", default=8123)
    # With CLICKHOUSE_HOST: the user.
    user = quote(env.str("CLICKHOUSE_USER", default="default"), safe="")
    # With CLICKHOUSE_HOST: the password.
    password = quote(env.str("CLICKHOUSE_PASSWORD", default=""), safe="")
    scheme = "https" if port in (443, 8443) else "http"
    credentials = f"{user}:{password}@" if password else f"{user}@"
    return f"{scheme}://{credentials}{host}:{port}/"


# `http(s)://user:password@host:port/database` for a ClickHouse server, `chdb://<path>` for the
# embedded engine (development only: refused when DEBUG=false). Required in production unless
# CLICKHOUSE_HOST is set. Default:
# `chdb://.data/clickhouse` with DEBUG=true.
CLICKHOUSE_URL: str = (
    env.str("CLICKHOUSE_URL", default="") or _clickhouse_url_from_host_variables() or ""
)
if not CLICKHOUSE_URL:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set the CLICKHOUSE_URL environment variable (or CLICKHOUSE_HOST) when DEBUG=false"
        )
    CLICKHOUSE_URL = f"chdb://{PROJECT_ROOT / '.data' / 'clickhouse'}"
if not CLICKHOUSE_URL.startswith(("http://", "https://", "chdb://")):
    raise ImproperlyConfigured("CLICKHOUSE_URL must start with http://, https:// or chdb://")
if CLICKHOUSE_URL.startswith("chdb://") and not DEBUG:
    # The embedded engine is a development tool: the image does not ship it, and neither it nor
    # its HTTP front (devtools.clickhouse_http) checks credentials.
    raise ImproperlyConfigured(
        "CLICKHOUSE_URL must not be chdb:// (the embedded engine, development only) "
        "when DEBUG=false"
    )

# The database of the event table (created by the migrate role). Default: the URL's path,
# else `default`.
CLICKHOUSE_DATABASE = env.str("CLICKHOUSE_DATABASE", default="") or (
    (CLICKHOUSE_URL.startswith("http") and urlparse(CLICKHOUSE_URL).path.strip("/")) or "default"
)
# The event table's name.
CLICKHOUSE_EVENT_TABLE = env.str("CLICKHOUSE_EVENT_TABLE", default="event_log")
# A cluster name: tables are created ON CLUSTER with replicated engines.
CLICKHOUSE_CLUSTER = env.str("CLICKHOUSE_CLUSTER", default="")
# Seconds to connect to ClickHouse.
CLICKHOUSE_CONNECT_TIMEOUT = env.float("CLICKHOUSE_CONNECT_TIMEOUT", default=5.0)
# Seconds to wait for a ClickHouse response (queries, DDL).
CLICKHOUSE_SEND_RECEIVE_TIMEOUT = env.float("CLICKHOUSE_SEND_RECEIVE_TIMEOUT", default=60.0)
for _name, _value in (
    ("CLICKHOUSE_DATABASE", CLICKHOUSE_DATABASE),
    ("CLICKHOUSE_EVENT_TABLE", CLICKHOUSE_EVENT_TABLE),
):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", _value):
        raise ImproperlyConfigured(f"{_name} must be a plain identifier, got {_value!r}")
# Seconds one relay insert may take in all: the client's socket timeout for it (progress headers
# off, so a slow server cannot stretch it) and the server's max_execution_time.
CLICKHOUSE_INSERT_TIMEOUT = env.float("CLICKHOUSE_INSERT_TIMEOUT", default=15.0)
# Inserts the event table remembers for deduplication (its non_replicated_ or
# replicated_deduplication_window); the migrate role raises a smaller one.
CLICKHOUSE_DEDUPLICATION_WINDOW = env.int("CLICKHOUSE_DEDUPLICATION_WINDOW", default=10_000)
