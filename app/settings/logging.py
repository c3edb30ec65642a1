from django.core.exceptions import ImproperlyConfigured

from app.core.logging import build_logging_config, configure_structlog, logging_level_name

from .env import DEBUG, env

LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'console', got {LOG_FORMAT!r}")
try:
    LOG_LEVEL = logging_level_name(env.str("LOG_LEVEL", default="INFO"))
except ValueError as error:
    raise ImproperlyConfigured(f"LOG_LEVEL: {error}") from error

LOGGING = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
configure_structlog()
