import json
import logging
from wsgiref.util import setup_testing_defaults

import pytest
import sentry_sdk
import structlog
from django.core.handlers.wsgi import WSGIHandler
from django.urls import path
from sentry_sdk.transport import Transport

from app.config.sentry import sentry_init

DSN = "https://public@o0.ingest.sentry.io/0"


class CapturingTransport(Transport):
    """Sentry's network boundary: keeps envelopes instead of sending them."""

    def __init__(self):
        super().__init__()
        self.envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def events(self) -> list[dict]:
        sentry_sdk.flush()
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "event"
        ]


def sentry_reset() -> None:
    """No client, and no breadcrumbs or context left over from an earlier test."""
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    sentry_sdk.get_isolation_scope().clear()
    sentry_sdk.get_current_scope().clear()


@pytest.fixture
def sentry_transport():
    sentry_reset()
    transport = CapturingTransport()
    sentry_init(
        dsn=DSN,
        environment="staging",
        release="1.2.3",
        traces_sample_rate=0.0,
        transport=transport,
    )
    yield transport
    sentry_reset()


def test_sentry_init_reports_every_role_without_personal_data(sentry_transport):
    client = sentry_sdk.get_client()

    assert client.is_active()
    assert client.transport is sentry_transport
    assert {"django", "celery", "logging"} <= set(client.integrations)
    assert client.options["environment"] == "staging"
    assert client.options["release"] == "1.2.3"
    assert client.options["send_default_pii"] is False


def test_a_logged_error_becomes_an_event_and_info_only_a_breadcrumb(sentry_transport):
    logger = logging.getLogger("app.outbox")

    logger.info("relay tick started")
    logger.error("relay failed after %d attempts", 3)

    [event] = sentry_transport.events()
    assert event["level"] == "error"
    assert event["logger"] == "app.outbox"
    assert event["logentry"]["formatted"] == "relay failed after 3 attempts"
    assert (event["environment"], event["release"]) == ("staging", "1.2.3")
    assert [crumb["message"] for crumb in event["breadcrumbs"]["values"]] == ["relay tick started"]


def test_a_structlog_error_becomes_an_event_named_after_it(sentry_transport):
    logger = structlog.get_logger("app.outbox")

    logger.info("outbox_batch_claimed", batch_size=500)
    logger.error("outbox_batch_failed", batch_size=500, password="Harbor-Lantern-7720")
    logger.error("outbox_batch_failed", batch_size=200, password="Harbor-Lantern-7720")

    events = sentry_transport.events()
    assert len(events) == 2
    # The message is the event name alone, so that Sentry groups both into one issue.
    assert {event["logentry"]["message"] for event in events} == {"outbox_batch_failed"}
    assert [event["extra"]["batch_size"] for event in events] == [500, 200]
    [claimed, *_] = events[0]["breadcrumbs"]["values"]
    assert (claimed["message"], claimed["data"]["batch_size"]) == ("outbox_batch_claimed", 500)
    assert "Harbor-Lantern-7720" not in json.dumps(events)


def test_a_structlog_exception_reaches_sentry_with_its_traceback(sentry_transport):
    logger = structlog.get_logger("app.outbox")

    try:
        raise ConnectionRefusedError("clickhouse is down")
    except ConnectionRefusedError:
        logger.exception("outbox_relay_crashed")

    [event] = sentry_transport.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ConnectionRefusedError"
    assert exception["value"] == "clickhouse is down"
    assert exception["stacktrace"]["frames"]
    assert event["logentry"]["message"] == "outbox_relay_crashed"


def _crash(request):
    raise RuntimeError("view crashed")


urlpatterns = [path("crash/", _crash)]


def wsgi_get(path_info: str, **environ_overrides) -> str:
    """One request through Django's WSGI handler, where Sentry hooks in as under gunicorn."""
    environ: dict = {"PATH_INFO": path_info, **environ_overrides}
    setup_testing_defaults(environ)
    statuses = []
    response = WSGIHandler()(
        environ, lambda status, headers, exc_info=None: statuses.append(status)
    )
    response.close()
    return statuses[0]


@pytest.mark.urls(__name__)
def test_an_unhandled_view_error_is_reported_without_cookies_or_ip(sentry_transport):
    status = wsgi_get(
        "/crash/",
        REMOTE_ADDR="203.0.113.9",
        HTTP_COOKIE="sessionid=Cookie-Secret-5512",
        HTTP_AUTHORIZATION="Bearer Token-Secret-8841",
    )

    assert status.startswith("500")
    [event] = sentry_transport.events()
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "view crashed")
    assert event["request"]["url"].endswith("/crash/")
    reported = json.dumps(event)
    for personal in ("Cookie-Secret-5512", "Token-Secret-8841", "203.0.113.9"):
        assert personal not in reported


def sentry_state(isolated_project, env: dict[str, str]) -> dict:
    result = isolated_project.script("sentry_state", env={"DEBUG": "true", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("dsn_env", [{}, {"SENTRY_CONFIG_DSN": ""}], ids=["unset", "empty"])
def test_settings_leave_sentry_off_without_a_dsn(isolated_project, dsn_env):
    assert sentry_state(isolated_project, dsn_env)["active"] is False


def test_settings_start_sentry_with_a_dsn(isolated_project):
    state = sentry_state(
        isolated_project,
        {
            "SENTRY_CONFIG_DSN": DSN,
            "SENTRY_CONFIG_ENVIRONMENT": "staging",
            "APP_VERSION": "2.0.1",
        },
    )

    assert state == {
        "active": True,
        "environment": "staging",
        "release": "2.0.1",
        "send_default_pii": False,
    }
