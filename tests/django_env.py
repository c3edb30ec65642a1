"""The environment the suite runs in, set before Django reads its settings.

pytest-django imports the settings in its `pytest_load_initial_conftests` hook, before any
conftest.py is read, so this is a plugin loaded with `-p tests.django_env` (pyproject addopts).
Values already in the environment win, as they win over `.env`: CI can point DATABASE_URL or
CLICKHOUSE_URL at its service containers.
"""

import os

# Development settings: local PostgreSQL and Redis, no production secrets needed.
os.environ.setdefault("DEBUG", "true")
# A test run must never report to a real Sentry project, whatever the environment or `.env` say.
os.environ["SENTRY_CONFIG_DSN"] = ""
# Redis database 15, not the development stack's 0: wake-ups sent by the tests stay apart.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Rate limits are under test in tests/users (with settings of their own), not everywhere else.
os.environ.setdefault("REGISTRATION_RATE_PER_CLIENT", "off")
os.environ.setdefault("REGISTRATION_RATE_GLOBAL", "off")
# The processes tests start serve no metrics port unless the test gives each its own: the
# default (9100) is one per host, and test runs share the host.
os.environ.setdefault("METRICS_BIND", "off")
