"""Sentry: on only when SENTRY_CONFIG_DSN is set."""

from ..env import env

# Sentry DSN; Sentry is initialised only when it is set.
SENTRY_CONFIG_DSN = env.str("SENTRY_CONFIG_DSN", default="")
# Share of requests and tasks traced (0 to 1).
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
