"""structlog for everything: the app, Django, Celery and gunicorn log through one pipeline.

Production writes JSON lines; development writes readable console lines. Values under keys that
look like credentials are redacted before any renderer sees them.
"""

import logging
import re
from typing import Any, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api_?key|dsn|credential", re.IGNORECASE
)
# scheme://user:password@host. The user may be empty (`redis://:pw@cache`) or an unencoded email;
# the password runs to the last `@` before the path, so one containing `@` is hidden whole.
_URL_PASSWORD = re.compile(r"(?P<userinfo>[a-z][a-z0-9+.-]*://[^:/\s]*):[^/\s]*@", re.IGNORECASE)
# key=value connection strings (libpq: `host=db password=pw`, `password = 'p w'`, `sslpassword`);
# a quoted value may hold spaces and backslash-escaped quotes.
_ASSIGNED_PASSWORD = re.compile(
    r"(?P<key>\b\w*password\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|$)|\"(?:[^\"\\]|\\.)*(?:\"|$)|\S+)",
    re.IGNORECASE,
)


def redact(value: Any) -> Any:
    """`value` with credentials hidden: the items of dicts (at any depth) whose key looks like a
    credential, and passwords written inside strings (URLs, key=value connection strings)."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _SENSITIVE_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(rf"\g<userinfo>:{REDACTED}@", value)
        return _ASSIGNED_PASSWORD.sub(rf"\g<key>{REDACTED}", value)
    return value


def redact_sensitive_values(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    """Hide credentials: values of password/secret/token-like keys and passwords in text."""
    return cast(EventDict, redact(event_dict))


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_sensitive_values,
    ]


# Celery logs every task received and finished, and beat every tick: with a relay tick each
# second that drowns everything else, so these speak only from WARNING unless LOG_LEVEL=DEBUG.
_CHATTY_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def build_logging_config(*, level: str, log_format: str) -> dict[str, Any]:
    """The stdlib `LOGGING` dict: one handler on the root logger, rendered by structlog."""
    chatty_level = "DEBUG" if level == "DEBUG" else max(level, "WARNING", key=logging.getLevelName)
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    # Again after format_exc_info: exception messages can carry URLs with passwords.
                    redact_sensitive_values,
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "structlog",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Django and gunicorn add their own handlers; send everything through the root one.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
            "gunicorn.error": {"handlers": [], "level": level, "propagate": True},
            "gunicorn.access": {"handlers": [], "level": level, "propagate": True},
            "celery": {"handlers": [], "level": level, "propagate": True},
            **{name: {"level": chatty_level} for name in _CHATTY_LOGGERS},
        },
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_level_name(level: str) -> str:
    name = level.upper()
    if not isinstance(logging.getLevelName(name), int):
        raise ValueError(f"unknown log level {level!r}")
    return name
