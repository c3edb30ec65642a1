import io
import json
import logging
import re
from http import HTTPStatus

import pytest
import structlog
from django.conf import settings
from django.utils.log import configure_logging

from app.config.logging import REDACTED, build_logging_config

URL = "/api/v1/users/"
GENERATED_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


class CapturedLogs:
    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        """Every line, parsed: a line that is not a JSON object fails the test."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def capture_logs():
    """Route the root logger through the production pipeline into a buffer, then restore."""

    def configure(*, log_format: str = "json", level: str = "INFO") -> CapturedLogs:
        stream = io.StringIO()
        config = build_logging_config(level=level, log_format=log_format)
        config["handlers"]["stdout"]["stream"] = stream
        logging.config.dictConfig(config)
        return CapturedLogs(stream)

    structlog.contextvars.clear_contextvars()
    yield configure
    structlog.contextvars.clear_contextvars()
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def post_empty_object(client, **headers):
    """A request Django logs (400 Bad Request) without touching the database."""
    return client.post(URL, b"{}", content_type="application/json", headers=headers)


def test_log_lines_carry_the_request_id_the_client_sent(client, capture_logs):
    logs = capture_logs()

    response = post_empty_object(client, **{"X-Request-ID": "abc-123"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["X-Request-ID"] == "abc-123"
    records = logs.records()
    assert any(record["event"] == f"Bad Request: {URL}" for record in records), records
    assert {record.get("request_id") for record in records} == {"abc-123"}
    assert all(record["level"] and record["timestamp"] for record in records)


def test_a_request_without_id_gets_a_generated_one(client, capture_logs):
    logs = capture_logs()

    first = post_empty_object(client, **{"X-Request-ID": "abc-123"})
    second = post_empty_object(client)

    generated = second["X-Request-ID"]
    assert GENERATED_REQUEST_ID.fullmatch(generated)
    second_records = [r for r in logs.records() if r.get("request_id") != first["X-Request-ID"]]
    assert second_records, "the second request logged nothing of its own"
    assert {record.get("request_id") for record in second_records} == {generated}


@pytest.mark.parametrize(
    "offered",
    [
        pytest.param("abc 123", id="space"),
        pytest.param("x" * 500, id="too-long"),
        pytest.param("abc-123\n", id="trailing-newline"),
        pytest.param("abc/123", id="slash"),
        pytest.param('{"json":1}', id="json"),
    ],
)
def test_an_unacceptable_request_id_is_replaced(client, capture_logs, offered):
    logs = capture_logs()

    response = post_empty_object(client, **{"X-Request-ID": offered})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    replacement = response["X-Request-ID"]
    assert GENERATED_REQUEST_ID.fullmatch(replacement)
    records = logs.records()
    assert records
    assert {record.get("request_id") for record in records} == {replacement}


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.django_db
def test_no_password_reaches_the_logs(client, capture_logs, user_factory, log_format):
    registered_password = "Nebula-Tangerine-6604"
    weak_password = "Qz7#kx"
    structlog_password = "Sprocket-Walnut-3319"
    url_password = "secretpw"
    database_url = f"postgres://u:{url_password}@h/db"
    logs = capture_logs(log_format=log_format, level="DEBUG")

    created = client.post(
        URL,
        {"email": "ada@example.com", "password": registered_password},
        content_type="application/json",
    )
    duplicate = client.post(
        URL,
        {"email": "ADA@example.com", "password": registered_password},
        content_type="application/json",
    )
    weak = client.post(
        URL,
        {"email": "grace@example.com", "password": weak_password},
        content_type="application/json",
    )
    logger = structlog.get_logger("tests.logging")
    logger.info("database_configured", password=structlog_password, url=database_url)
    logger.info("connecting_to %s", database_url)
    logging.getLogger("tests.logging").warning(
        "connecting to %s", database_url, extra={"db_password": structlog_password}
    )
    try:
        raise ConnectionError(f"cannot reach {database_url}")
    except ConnectionError:
        logger.exception("database_unreachable")
        logging.getLogger("tests.logging").exception("database unreachable")

    assert [created.status_code, duplicate.status_code, weak.status_code] == [201, 409, 400]
    output = logs.text
    # The failing requests and every event above were logged, with the secrets redacted.
    assert f"Conflict: {URL}" in output
    assert f"Bad Request: {URL}" in output
    assert output.count("database_configured") == 1
    assert output.count("ConnectionError: cannot reach postgres://u:") == 2
    assert REDACTED in output
    for secret in (registered_password, weak_password, structlog_password, url_password):
        assert secret not in output


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        pytest.param(
            "postgres://u:secretpw@h/db", f"postgres://u:{REDACTED}@h/db", id="url-user-password"
        ),
        pytest.param(
            "redis://:Redis-Secret-1@cache:6379/0",
            f"redis://:{REDACTED}@cache:6379/0",
            id="url-password-only",
        ),
        pytest.param(
            "postgres://app:Pa@ss@word-2@db:5432/app",
            f"postgres://app:{REDACTED}@db:5432/app",
            id="url-password-with-at",
        ),
        pytest.param(
            "cannot reach postgres://ada@example.com:Mail-User-3@db/app: refused",
            f"cannot reach postgres://ada@example.com:{REDACTED}@db/app: refused",
            id="url-user-with-at",
        ),
        pytest.param(
            "host=db port=5432 password=Libpq-Secret-4 dbname=app",
            f"host=db port=5432 password={REDACTED} dbname=app",
            id="libpq",
        ),
        pytest.param(
            "host=db password = Libpq-Secret-5 sslpassword=Key-Secret-6",
            f"host=db password = {REDACTED} sslpassword={REDACTED}",
            id="libpq-spaced-and-sslpassword",
        ),
        pytest.param(
            r"host=db password='Se cret \' 7' dbname=app",
            f"host=db password={REDACTED} dbname=app",
            id="libpq-quoted",
        ),
        pytest.param("PASSWORD=Env-Secret-8", f"PASSWORD={REDACTED}", id="uppercase-assignment"),
        # Nothing secret: left as it is.
        pytest.param(
            "postgres://app@db:5432/app", "postgres://app@db:5432/app", id="url-user-only"
        ),
        pytest.param(
            "https://example.com:8443/users/ada@example.com",
            "https://example.com:8443/users/ada@example.com",
            id="url-at-in-path",
        ),
        pytest.param(
            "host=db port=5432 dbname=app",
            "host=db port=5432 dbname=app",
            id="libpq-without-password",
        ),
    ],
)
def test_credentials_inside_text_are_redacted(capture_logs, logged, shown):
    logs = capture_logs()

    structlog.get_logger("tests.logging").info("database_configured", url=logged)
    logging.getLogger("tests.logging").warning("connecting to %s", logged)

    [structlog_record, stdlib_record] = logs.records()
    assert structlog_record["url"] == shown
    assert stdlib_record["event"] == f"connecting to {shown}"
