"""The status page: anonymous callers learn only the overall state; staff see every check, the
backlog and the relay; the checks run at most once per few seconds per process, bounded in time."""

import pytest

from app.outbox import views

from .factories import outbox_rows_create

SECURE = {"HTTP_X_FORWARDED_PROTO": "https"}


@pytest.fixture(autouse=True)
def _fresh_status_cache():
    views.status_cache_clear()
    yield
    views.status_cache_clear()


@pytest.mark.django_db
def test_an_anonymous_caller_gets_the_overall_state_only(client, event_log):
    outbox_rows_create(3)

    response = client.get("/healthz/status?format=json", **SECURE)
    text = client.get("/healthz/status", **SECURE)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert text.content.decode() == "status: ok\n"


@pytest.mark.django_db
def test_staff_see_every_check_the_backlog_and_the_relay(client, superuser, event_log):
    outbox_rows_create(3)
    client.force_login(superuser)

    report = client.get("/healthz/status?format=json", **SECURE).json()

    assert report["status"] == "ok"
    assert report["checks"] == dict.fromkeys(
        ["database", "migrations", "redis", "clickhouse"], "ok"
    )
    assert report["outbox"]["pending"] == 3
    assert report["outbox"]["relay"]["breaker"] == "closed"


@pytest.mark.django_db
def test_the_checks_run_once_per_cache_period(client, event_log, monkeypatch):
    runs = []
    real_run_checks = views.run_checks

    def counting_run_checks(*args, **kwargs):
        runs.append(1)
        return real_run_checks(*args, **kwargs)

    monkeypatch.setattr(views, "run_checks", counting_run_checks)

    for _ in range(20):
        assert client.get("/healthz/status?format=json", **SECURE).status_code == 200

    assert len(runs) == 1
