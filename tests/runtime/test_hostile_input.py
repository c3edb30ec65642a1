"""Hostile input through the real web role (gunicorn, production settings): every case gets its
documented 4xx with a problem+json body naming the problem, never a 500 or a dropped
connection, and a rejected request writes nothing (no user, no outbox event)."""

import http.client
import json
import socket

import pytest

from app.outbox.models import OutboxEvent
from app.users.models import User
from tests.support.http import SECURE
from tests.support.processes import wait_until


@pytest.fixture
def web_port(start_role, role_env) -> int:
    start_role("web", role_env)
    port = int(role_env["WEB_BIND"].rsplit(":", 1)[1])

    def answering() -> bool:
        try:
            return _post(port, b"{}")[0] == 400
        except OSError:
            return False

    assert wait_until(answering, timeout=30)
    return port


def _post(port: int, body: bytes, *, chunked: bool = False) -> tuple[int, dict]:
    """POST `body` to the registration endpoint; (status, parsed problem or user)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {**SECURE, "Content-Type": "application/json"}
    try:
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            connection.putrequest("POST", "/api/v1/users/", skip_host=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for start in range(0, len(body), 1000):
                piece = body[start : start + 1000]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        else:
            connection.request("POST", "/api/v1/users/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _registration(**fields: str) -> bytes:
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800, as a client would send it.
    return json.dumps({"email": "ada@example.com", **fields}).encode()


def _written() -> tuple[int, int]:
    return User.objects.count(), OutboxEvent.objects.count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_registration(first_name="Ada\u0000"), "first_name", "NUL"),
        (_registration(last_name="\u0000"), "last_name", "NUL"),
        (_registration(first_name="\ud800"), "first_name", "surrogate"),
        (_registration(email="ada@ex\ud800mple.com"), "email", "surrogate"),
        (_registration(password="Quartz-\ud800-Falcon-4821"), "password", "surrogate"),
    ],
    ids=["nul-first-name", "nul-last-name", "surrogate-first-name", "surrogate-email-domain",
         "surrogate-password"],
)  # fmt: skip
def test_text_postgresql_or_utf8_cannot_hold_is_a_field_error(web_port, body, field, message):
    status, problem = _post(web_port, body)

    assert status == 400, problem
    assert message in " ".join(problem["errors"][field])
    assert _written() == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_json_nested_too_deeply_is_a_clear_400(web_port):
    status, problem = _post(web_port, b"[" * 2000 + b"]" * 2000)

    assert status == 400
    assert "nested" in problem["detail"]
    assert _written() == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_one_mailbox_is_one_user_whatever_the_form_of_its_domain(web_port):
    assert _post(web_port, _registration(email="x@exämple.com"))[0] == 201
    status, problem = _post(web_port, _registration(email="x@xn--exmple-cua.com"))

    assert status == 409, problem
    assert _written() == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_without_content_length_is_read(web_port):
    status, user = _post(web_port, _registration(first_name="Chunky"), chunked=True)

    assert status == 201, user
    assert user["first_name"] == "Chunky"


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_413(web_port):
    body = _registration(first_name="x" * 100_000)

    status, problem = _post(web_port, body, chunked=True)

    assert status == 413
    assert "at most" in problem["detail"]
    assert _written() == (0, 0)


def _raw_exchange(port: int, raw: bytes) -> tuple[int, str, dict]:
    """Send `raw` bytes as they are; (status, content type, parsed body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), json.loads(body)


_HEAD = b"POST /api/v1/users/ HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Proto: https\r\n"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # A chunk whose size is not hexadecimal: gunicorn's parser fails inside the view.
        (_HEAD + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"zz\r\n{}\r\n0\r\n\r\n", 400),
        # Two Content-Type headers: gunicorn refuses it before the application.
        (_HEAD + b"Content-Type: application/json\r\nContent-Type: application/json\r\n"
         b"Content-Length: 2\r\n\r\n{}", 400),
        # A transfer coding gunicorn does not implement.
        (_HEAD + b"Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{}", 400),
    ],
    ids=["malformed-chunk", "two-content-types", "unknown-transfer-coding"],
)  # fmt: skip
def test_malformed_http_gets_a_problem_answer_not_a_dropped_connection(web_port, raw, status):
    answered, content_type, problem = _raw_exchange(web_port, raw)

    assert answered == status, problem
    assert content_type == "application/problem+json"
    assert problem["status"] == status
    assert _written() == (0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "email",
    [
        "\u0131@example.com",  # a dotless i: a look-alike of i@example.com
        "x@xn--pypal-4ve.com",  # "paypal" with a Cyrillic a, in its ASCII form
        "x@xn--exmple-cu.com",  # not a valid IDNA label
    ],
    ids=["dotless-i-local-part", "mixed-scripts-ascii-form", "invalid-idna-label"],
)
def test_look_alike_and_invalid_addresses_are_refused_in_every_form(web_port, email):
    status, problem = _post(web_port, _registration(email=email))

    assert status == 400, problem
    assert problem["errors"]["email"]
    assert _written() == (0, 0)
