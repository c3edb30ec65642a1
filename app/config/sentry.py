import logging
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

# Sentry records these itself; the rest of a structlog event is its context.
_STRUCTLOG_OWN_KEYS = frozenset({"event", "level", "logger", "timestamp", "exc_info"})


def _structlog_event(hint: Hint | BreadcrumbHint | None) -> tuple[str, dict[str, Any]] | None:
    """(name, context) of a log record written by structlog, which passes its event dict as
    the record's message; None for any other record."""
    event_dict = getattr((hint or {}).get("log_record"), "msg", None)
    if not isinstance(event_dict, dict) or "event" not in event_dict:
        return None
    context = {k: v for k, v in event_dict.items() if k not in _STRUCTLOG_OWN_KEYS}
    return str(event_dict["event"]), context


def _name_structlog_event(event: Event, hint: Hint) -> Event:
    """Sentry groups log events by message: give it the event name, not the whole event dict
    (whose timestamp alone would make every occurrence an issue of its own)."""
    if structlog_event := _structlog_event(hint):
        name, context = structlog_event
        event["logentry"] = {"message": name, "formatted": name, "params": []}
        event["extra"] = {**event.get("extra", {}), **context}
    return event


def _name_structlog_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    if structlog_event := _structlog_event(hint):
        crumb["message"], context = structlog_event
        crumb["data"] = {**crumb.get("data", {}), **context}
    return crumb


def sentry_init(
    *,
    dsn: str,
    environment: str,
    release: str,
    traces_sample_rate: float,
    transport: Transport | None = None,
) -> None:
    """Report errors (and sampled traces) from every role; never send personal data."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        before_send=_name_structlog_event,
        before_breadcrumb=_name_structlog_breadcrumb,
        transport=transport,
    )
