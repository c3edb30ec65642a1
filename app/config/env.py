"""The one environment reader: every setting of every role comes through `env`.

A `.env` file in the project root is read when present; real environment variables win. This
module loads no Django settings and no Celery, so the exec probes (app/config/probe.py) read
their variables through it cheaply.
"""

from pathlib import Path
from typing import Any

import environ

# Django's ImproperlyConfigured, as django-environ imports it: this module imports no Django itself.
ImproperlyConfigured = environ.ImproperlyConfigured

# The project root: manage.py, .env and the development data directory (.data/) live here.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class StrictEnv(environ.Env):
    """django-environ, but a value that does not parse names its variable and stops the process.

    Plain django-environ reads `DEBUG=ture` as false and `WEB_WORKERS=four` as a bare
    ValueError; a twelve-factor service must refuse such configuration at start instead.
    """

    BOOLEAN_FALSE_STRINGS = ("false", "off", "no", "0", "")

    def get_value(
        self,
        var: str,
        cast: Any = None,
        default: Any = environ.Env.NOTSET,
        parse_default: bool = False,
    ) -> Any:
        # A variable set to an empty string counts as unset (as a blank ConfigMap entry does).
        if var in self.ENVIRON and not self.ENVIRON[var].strip():
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return self.parse_value(default, cast) if parse_default and cast else default
        if cast is bool and var in self.ENVIRON:
            raw = self.ENVIRON[var].strip().lower()
            if raw not in self.BOOLEAN_TRUE_STRINGS + self.BOOLEAN_FALSE_STRINGS:
                raise ImproperlyConfigured(f"{var} must be a boolean (true/false), got {raw!r}")
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError) as error:
            raise ImproperlyConfigured(f"{var} has an invalid value: {error}") from error

    def is_set(self, var: str) -> bool:
        return bool(self.ENVIRON.get(var, "").strip())


env = StrictEnv()
if (PROJECT_ROOT / ".env").is_file():
    environ.Env.read_env(PROJECT_ROOT / ".env", overwrite=False)

# Development mode: development defaults, console logs, no HTTPS hardening.
DEBUG = env.bool("DEBUG", default=False)


def env_required_in_production(var: str, *, development_default: Any, cast: Any = str) -> Any:
    """Read `var`; only a DEBUG process may fall back to a development default."""
    if DEBUG:
        return env.get_value(var, cast=cast, default=development_default)
    if not env.is_set(var):
        raise ImproperlyConfigured(
            f"Set the {var} environment variable (required when DEBUG=false)"
        )
    return env.get_value(var, cast=cast)
