"""The one environment reader: every setting of every role comes through `env`.

A `.env` file in the project root is read when present; real environment variables win.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class StrictEnv(environ.Env):
    """django-environ, but a value that does not parse names its variable and stops the process.

    Plain django-environ reads `DEBUG=ture` as false and `WEB_WORKERS=four` as a bare
    ValueError; a twelve-factor service must refuse such configuration at start instead.
    """

    BOOLEAN_FALSE_STRINGS = ("false", "off", "no", "0", "")

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
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


env = StrictEnv()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def env_required_in_production(var: str, *, development_default, cast=str):
    """Read `var`; only a DEBUG process may fall back to a development default."""
    if DEBUG:
        return env.get_value(var, cast=cast, default=development_default)
    if not env.ENVIRON.get(var, "").strip():
        raise ImproperlyConfigured(
            f"Set the {var} environment variable (required when DEBUG=false)"
        )
    return env.get_value(var, cast=cast)
