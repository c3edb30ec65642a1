import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest
import sentry_sdk
import structlog
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from sentry_sdk.transport import Transport

from app.config.logging import REDACTED
from app.config.sentry import sentry_init
from app.outbox.client import EventLogClient
from tests.support.sentry import SentryEndpoint

DSN = "https://public@o0.ingest.sentry.io/0"
# What a registration carries that must never reach Sentry.
PASSWORD = "Obsidian-Meadow-4417"
EMAIL = "juniper.quill-5581@example.com"
FIRST_NAME = "Perpetua"
LAST_NAME = "Thistlewood"


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
def sentry_endpoint():
    """Sentry as the settings start it, every trace sampled, sending over the SDK's real HTTP
    transport to a local endpoint that records the envelopes."""
    sentry_reset()
    with SentryEndpoint() as endpoint:
        sentry_init(
            dsn=endpoint.dsn, environment="staging", release="1.2.3", traces_sample_rate=1.0
        )
        yield endpoint
        sentry_reset()


def sent(endpoint: SentryEndpoint, item_type: str = "event") -> list[dict]:
    sentry_sdk.flush()
    return endpoint.items(item_type)


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


@csrf_exempt
def _crash(request):
    raise RuntimeError("view crashed")


urlpatterns = [path("crash/", _crash)]


@contextmanager
def connections_kept_open() -> Iterator[None]:
    """What Django's test client does around a request: the request must neither touch nor
    close the test's database connection when it starts and ends."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def wsgi_request(
    method: str, path_info: str, *, body: bytes = b"", content_type: str = "", **environ_overrides
) -> str:
    """One request through Django's WSGI handler, where Sentry hooks in as under gunicorn."""
    environ: dict = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        **environ_overrides,
    }
    setup_testing_defaults(environ)
    statuses = []
    with connections_kept_open():
        response = WSGIHandler()(
            environ, lambda status, headers, exc_info=None: statuses.append(status)
        )
        response.close()
    return statuses[0]


@pytest.mark.urls(__name__)
def test_an_unhandled_view_error_is_reported_without_cookies_or_ip(sentry_transport):
    status = wsgi_request(
        "GET",
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


def _fail_in_the_view(monkeypatch: pytest.MonkeyPatch) -> None:
    def user_register(**fields):
        raise RuntimeError("registration failed")

    monkeypatch.setattr("app.users.views.user_register", user_register)


def _fail_in_the_outbox_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep in the service: after the password was validated and hashed, and the user saved."""

    def publish(self, *events, **options):
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(EventLogClient, "publish", publish)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("break_registration", "message"),
    [
        pytest.param(_fail_in_the_view, "registration failed", id="in-the-view"),
        pytest.param(_fail_in_the_outbox_write, "outbox write failed", id="in-the-outbox-write"),
    ],
)
def test_a_failed_registration_reaches_sentry_without_password_or_personal_data(
    sentry_endpoint,
    monkeypatch,
    break_registration: Callable[[pytest.MonkeyPatch], None],
    message: str,
):
    break_registration(monkeypatch)
    body = {"email": EMAIL, "password": PASSWORD, "first_name": FIRST_NAME, "last_name": LAST_NAME}

    status = wsgi_request(
        "POST",
        "/api/v1/users/",
        body=json.dumps(body).encode(),
        content_type="application/json",
    )

    assert status.startswith("500")
    # The error arrives, with its traceback and the request it broke...
    [event] = sent(sentry_endpoint)
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("RuntimeError", message)
    assert exception["stacktrace"]["frames"]
    assert event["request"]["url"].endswith("/api/v1/users/")
    assert sent(sentry_endpoint, "transaction"), "the sampled trace was not sent"
    # ...but not what the user sent: not in frame locals, not as the body, not anywhere.
    received = sentry_endpoint.received()
    for personal in (PASSWORD, EMAIL, FIRST_NAME, LAST_NAME):
        assert personal not in received
    assert not event["request"].get("data")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            json.dumps({"email": EMAIL, "password": PASSWORD}), "application/json", id="json"
        ),
        pytest.param(
            json.dumps([{"email": EMAIL, "password": PASSWORD}]),
            "application/json",
            id="json-array",
        ),
        pytest.param(
            urlencode({"email": EMAIL, "password": PASSWORD}),
            "application/x-www-form-urlencoded",
            id="form",
        ),
    ],
)
@pytest.mark.urls(__name__)
def test_no_request_body_reaches_sentry(sentry_endpoint, body: str, content_type: str):
    status = wsgi_request("POST", "/crash/", body=body.encode(), content_type=content_type)

    assert status.startswith("500")
    [event] = sent(sentry_endpoint)
    assert event["exception"]["values"][0]["value"] == "view crashed"
    assert not event["request"].get("data")
    received = sentry_endpoint.received()
    for personal in (PASSWORD, EMAIL):
        assert personal not in received


def test_client_errors_are_not_reported(sentry_endpoint):
    registration = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
    statuses = [
        # Scanners: a Host that is not ours (DisallowedHost), on the API and anywhere else.
        wsgi_request("GET", "/wp-login.php", HTTP_HOST="203.0.113.7"),
        wsgi_request(
            "POST",
            "/api/v1/users/",
            body=registration,
            content_type="application/json",
            HTTP_HOST="scanner.example.net",
        ),
        wsgi_request("GET", "/.env"),
        wsgi_request("GET", "/api/v1/users/"),
        wsgi_request("POST", "/api/v1/users/", body=b'{"email": ', content_type="application/json"),
        wsgi_request("POST", "/api/v1/users/", body=registration, content_type="text/plain"),
    ]
    logging.getLogger("app.users").error("registration_store_unavailable")

    assert [status[:3] for status in statuses] == ["400", "400", "404", "405", "400", "415"]
    # Only the real error is an event: the transport works, and the client errors sent nothing.
    events = sent(sentry_endpoint)
    assert [event["logger"] for event in events] == ["app.users"]
    [event] = events
    assert event["logentry"]["message"] == "registration_store_unavailable"
    assert PASSWORD not in sentry_endpoint.received()


def test_credentials_in_log_context_and_exception_messages_are_scrubbed(sentry_endpoint):
    logger = logging.getLogger("app.outbox")

    try:
        raise ConnectionError(f"cannot reach redis://:{PASSWORD}@cache:6379/0")
    except ConnectionError:
        logger.exception(
            "relay_failed",
            extra={
                "clickhouse": {"url": "http://default@clickhouse:8123", "password": PASSWORD},
                "database_password": PASSWORD,
                "dsn": f"host=db password={PASSWORD}",
            },
        )

    [event] = sent(sentry_endpoint)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ConnectionError"
    assert exception["value"] == f"cannot reach redis://:{REDACTED}@cache:6379/0"
    assert event["extra"]["clickhouse"] == {
        "url": "http://default@clickhouse:8123",
        "password": REDACTED,
    }
    assert PASSWORD not in sentry_endpoint.received()


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
