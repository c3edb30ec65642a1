"""Fixtures for the whole suite. The environment itself is chosen in tests/django_env.py."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config.env import PROJECT_ROOT
from app.outbox.breaker import relay_breaker
from app.users.models import User

pytest_plugins = ["tests.support.fixtures"]


SCRIPTS = PROJECT_ROOT / "tests" / "support" / "scripts"
# Passes every password validator.
USER_PASSWORD = "Quartz-Falcon-4821"


@dataclass(frozen=True)
class IsolatedProject:
    """A copy of the code (app/ and manage.py) with no `.env` beside it.

    Settings read `.env` from the project root, so a subprocess started here sees exactly the
    environment its test passes, whatever a developer keeps in their own `.env`.
    """

    root: Path

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env={
                "PATH": os.environ.get("PATH", ""),
                "DJANGO_SETTINGS_MODULE": "app.config.settings",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def manage(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return self.run("manage.py", *args, env=env)

    def script(
        self, name: str, *args: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """Run tests/support/scripts/NAME.py against this copy of the code."""
        return self.run(
            str(SCRIPTS / f"{name}.py"), *args, env={"PYTHONPATH": str(self.root), **env}
        )

    def settings(self, *names: str, env: dict[str, str]) -> dict:
        """The values of the setting `names` in a process started with `env`."""
        result = self.script("print_settings", *names, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="session")
def isolated_project_factory():
    def copy_to(destination: Path) -> IsolatedProject:
        shutil.copytree(
            PROJECT_ROOT / "app",
            destination / "app",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copy2(PROJECT_ROOT / "manage.py", destination / "manage.py")
        return IsolatedProject(destination)

    return copy_to


@pytest.fixture(scope="session")
def isolated_project(isolated_project_factory, tmp_path_factory) -> IsolatedProject:
    return isolated_project_factory(tmp_path_factory.mktemp("project"))


@pytest.fixture(autouse=True)
def _relay_breaker_closed():
    """The relay's circuit breaker is per process: one test's outage must not carry over."""
    relay_breaker.reset()
    yield
    relay_breaker.reset()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The production hasher costs ~0.2 s per password; hashing strength is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user_factory(db):
    numbers = itertools.count(1)

    def create(*, email: str | None = None, password: str | None = USER_PASSWORD, **fields):
        return User.objects.create_user(
            email or f"user{next(numbers)}@example.com", password, **fields
        )

    return create


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("admin@example.com", USER_PASSWORD)
