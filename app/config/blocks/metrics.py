"""Prometheus metrics: where each role serves them (app/core/metrics_server.py)."""

from ..env import ImproperlyConfigured, env


def _listen_address(variable: str, raw: str) -> tuple[str, int] | None:
    """`host:port` (`[::]:port` for IPv6) as (host, port); None for `off`."""
    if raw.strip().lower() == "off":
        return None
    host, separator, port = raw.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"{variable} must be host:port (for example 0.0.0.0:9100) or off, got {raw!r}"
        )
    return host, int(port)


# Where this role serves GET /metrics (Prometheus text format), apart from the public web port:
# host:port, or off. Processes that share a host (`make run`) need different ports.
METRICS_BIND = env.str("METRICS_BIND", default="0.0.0.0:9100")
METRICS_ADDRESS = _listen_address("METRICS_BIND", METRICS_BIND)
# Seconds the outbox gauges (pending, due, oldest age, dead-lettered) are cached for: at most
# one process of the whole deployment queries PostgreSQL for them per interval.
METRICS_OUTBOX_REFRESH_SECONDS = env.float("METRICS_OUTBOX_REFRESH_SECONDS", default=15.0)
if METRICS_OUTBOX_REFRESH_SECONDS <= 0:
    raise ImproperlyConfigured(
        f"METRICS_OUTBOX_REFRESH_SECONDS must be above 0, got {METRICS_OUTBOX_REFRESH_SECONDS}"
    )
