"""Sentry: on only when SENTRY_CONFIG_DSN is set."""

from app.core.sentry import sentry_init

from .django import APP_VERSION, ENVIRONMENT_NAME
from .env import env

SENTRY_CONFIG_DSN = env.str("SENTRY_CONFIG_DSN", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)

if SENTRY_CONFIG_DSN:
    sentry_init(
        dsn=SENTRY_CONFIG_DSN,
        environment=ENVIRONMENT_NAME,
        release=APP_VERSION,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
