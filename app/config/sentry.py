import logging
from typing import Any, cast

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.scrubber import EventScrubber
from sentry_sdk.transport import Transport
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from .logging import redact

# Django logs each SuspiciousOperation (a Host not in ALLOWED_HOSTS, a forged session, too many
# fields) at ERROR to django.security.<name> and answers 400: the client's error, not ours, and
# scanners send them by the thousand. They stay in the log; Sentry is for our errors.
_CLIENT_ERROR_LOGGERS = "django.security.*"

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


def _redact_event(event: Event, hint: Hint) -> Event:
    """The last word on what leaves: the logs' redaction, on the whole event (log context and
    exception messages can carry a password, in a nested value or inside a URL)."""
    return cast(Event, redact(event))


def _before_send(event: Event, hint: Hint) -> Event:
    return _redact_event(_name_structlog_event(event, hint), hint)


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
    """Report errors (and sampled traces) from every role, not clients' errors; never send
    personal data or credentials."""
    ignore_logger(_CLIENT_ERROR_LOGGERS)
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        traces_sample_rate=traces_sample_rate,
        # Deprecated for data_collection, which would switch the event_scrubber below off.
        send_default_pii=False,
        # A request body is what the user typed: an email, a name, a password.
        max_request_body_size="never",
        # Frame locals hold the parsed body and the password on its way to the hasher.
        include_local_variables=False,
        # The SDK's own list of secret keys (session, csrf, auth...), at any depth.
        event_scrubber=EventScrubber(recursive=True, send_default_pii=False),
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        before_send=_before_send,
        before_send_transaction=_redact_event,
        before_breadcrumb=_name_structlog_breadcrumb,
        transport=transport,
    )
