"""Fixtures shared by the whole suite (registered from tests/conftest.py)."""

import os

import pytest
from django.conf import settings
from django.db import connection

from app.clickhouse.client import clickhouse_client
from app.clickhouse.event_log import event_log_table
from app.clickhouse.schema import clickhouse_migrate

from .clickhouse import running_devserver

# Like Django's test_ prefix: a suite pointed at a real server never touches its real data.
TEST_CLICKHOUSE_DATABASE = "test_die_hard"


def use_clickhouse(url: str) -> None:
    """Point this process, and every process it starts, at the ClickHouse at `url`."""
    settings.CLICKHOUSE_URL = os.environ["CLICKHOUSE_URL"] = url


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory):
    """The suite's ClickHouse, with the schema migrated into the test database."""
    settings.CLICKHOUSE_DATABASE = os.environ["CLICKHOUSE_DATABASE"] = TEST_CLICKHOUSE_DATABASE
    configured = os.environ.get("CLICKHOUSE_URL", "")
    if configured.startswith(("http://", "https://")):
        use_clickhouse(configured)
        clickhouse_migrate()
        yield configured
        return
    with running_devserver(tmp_path_factory.mktemp("clickhouse")) as url:
        use_clickhouse(url)
        clickhouse_migrate()
        yield url


@pytest.fixture
def event_log(clickhouse_url):
    """An empty event_log table; yields its qualified name."""
    clickhouse_client().command(f"TRUNCATE TABLE {event_log_table()}")
    return event_log_table()


@pytest.fixture
def process_env(clickhouse_url) -> dict[str, str]:
    """Environment for a child process (relay, gunicorn, worker) that must see this test's
    databases. Only data committed by the test is visible to it: use transaction=True."""
    database = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "app.config.settings",
        "DEBUG": "true",
        "DATABASE_URL": (
            f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "CLICKHOUSE_URL": clickhouse_url,
        "CLICKHOUSE_DATABASE": TEST_CLICKHOUSE_DATABASE,
    }
