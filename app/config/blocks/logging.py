"""Logging: structlog for the app, Django, Celery and gunicorn."""

from django.core.exceptions import ImproperlyConfigured

from ..env import DEBUG, env
from ..logging import build_logging_config, logging_level_name

# `json`: one JSON object per line; `console`: readable lines. Default: `json` (`console` with
# DEBUG=true).
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'console', got {LOG_FORMAT!r}")
# `DEBUG`, `INFO`, `WARNING` or `ERROR`.
_log_level = env.str("LOG_LEVEL", default="INFO")
try:
    LOG_LEVEL = logging_level_name(_log_level)
except ValueError as error:
    raise ImproperlyConfigured(f"LOG_LEVEL: {error}") from error

LOGGING = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
