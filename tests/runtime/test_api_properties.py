"""Property-based testing of the registration API from its OpenAPI document, against the real
web role (gunicorn, production settings, the headers the ingress adds).

Schemathesis generates requests from the served document, both ones that fit it and ones that
break it; strategies of our own add what a schema cannot say: arbitrary bytes, other media
types, methods and headers (those gunicorn reads itself too), deep nesting, oversized and
chunked bodies, text PostgreSQL or UTF-8 cannot hold, letters that change under case mapping.
Whatever the request, the answer is one the document describes (status, media type, body,
headers), never a 5xx or a dropped connection; an answer other than 201 writes nothing, and a
201 writes exactly the one user and its user_created event. One property more: a mailbox gets
the same answer whatever the form of its domain.

Each test prints how many requests it sent, by status code; the example budgets keep the module
under a minute (some 3,500 requests when every property holds).
"""

import contextlib
import http.client
import json
import socket
import string
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import idna
import pytest
import requests
import schemathesis
from django.conf import settings
from django.db import connection
from hypothesis import HealthCheck, Phase, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.outbox.models import OutboxEvent
from app.users.events import UserCreated
from app.users.models import User
from tests.support.http import SECURE
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/users/"
DOCUMENT_PATH = "/api/v1/openapi.json"
LIMIT = settings.API_MAX_BODY_BYTES
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def budget(examples: int) -> hypothesis_settings:
    """`examples` generated cases, however slow a real server makes each one."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        # Nothing stored in the project tree; every run explores afresh.
        database=None,
        # Explaining a failure would replay it many more times against the server.
        phases=[phase for phase in Phase if phase is not Phase.explain],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# --- The web role and what a request may do to it ----------------------------------------------


@dataclass(frozen=True)
class RawRequest:
    """A request as bytes on the wire: any method, headers in order (repeats allowed), and a
    body framed by its Content-Length, as chunks already framed in `body`, or by nothing but
    the headers given. Chunked and as-given requests end with the client closing its side, so
    the server must answer even a body that ends too early."""

    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    framing: Literal["length", "chunked", "as given"] = "length"

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        headers = [
            (name, value if len(value) <= 100 else f"{value[:100]}... ({len(value)})")
            for name, value in self.headers[:10]
        ]
        if len(self.headers) > 10:
            headers.append(("...", f"{len(self.headers) - 10} more"))
        return (
            f"RawRequest({self.method} {PATH}, headers={headers!r}, {self.framing} body of "
            f"{len(self.body)} bytes: {body!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis shows a failing example as repr() shows it, long bodies cut."""
        printer.text(repr(self))


def _written() -> tuple[int, int]:
    return User.objects.count(), OutboxEvent.objects.count()


class WebRole:
    """The running web role as the properties see it: every request is sent over HTTP with the
    ingress's headers, counted, and its answer checked against the document and the database."""

    def __init__(self, port: int):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.session = requests.Session()
        self.schema = schemathesis.openapi.from_url(
            f"{self.base_url}{DOCUMENT_PATH}", headers=SECURE
        )
        self.statuses: Counter[str] = Counter()
        self.written = _written()
        self.started = time.monotonic()

    def send_case(self, case: schemathesis.Case) -> None:
        """Send a case Schemathesis generated, to a server with no users; every check
        Schemathesis has for it must pass, including that data breaking the document is
        rejected."""
        self._forget_users()
        try:
            response = case.call(
                base_url=self.base_url, session=self.session, headers=SECURE, timeout=30
            )
        except requests.RequestException as error:
            self.statuses["no answer"] += 1
            raise AssertionError(f"no response: {error!r}") from None
        self._record(response)
        try:
            case.validate_response(
                response, checks=[*CONFORMANCE, negative_data_rejection], headers=SECURE
            )
        except FailureGroup as failures:
            # An AssertionError, which Hypothesis shrinks (a FailureGroup is no Exception).
            raise AssertionError(failures.message) from None

    def send(self, *requests: RawRequest) -> list[int]:
        """Send hand-made requests in turn, to a server with no users; each answer must be one
        the document describes (405 for a method it does not list). Their status codes."""
        self._forget_users()
        return [self._send(request) for request in requests]

    def _forget_users(self) -> None:
        """Each example starts from no users, so that replaying it, as Hypothesis does to
        confirm and shrink a failure, gets the same answers: a 201, not a 409."""
        if self.written != (0, 0):
            with connection.cursor() as cursor:
                for model in (OutboxEvent, User):
                    cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
            self.written = (0, 0)

    def _send(self, request: RawRequest) -> int:
        response = self._exchange(request)
        self._record(response)
        if request.method == "OPTIONS":
            operation = self.schema[PATH]["OPTIONS"]
        else:
            operation = self.schema[PATH]["POST"]
            if request.method != "POST":
                assert response.status_code == 405, f"{request!r} got {response.status_code}"
        # A HEAD answer has the headers of the GET answer and no body to validate.
        checks = [
            check
            for check in CONFORMANCE
            if request.method != "HEAD" or check is not response_schema_conformance
        ]
        try:
            operation.Case().validate_response(response, checks=checks)
        except FailureGroup as failures:
            # The request as sent, not the message's curl command, which knows nothing of it.
            problems = failures.message.partition("Reproduce with:")[0].rstrip()
            raise AssertionError(f"{request!r} got:\n{problems}") from None
        return response.status_code

    def _exchange(self, request: RawRequest) -> schemathesis.Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            connection.putrequest(request.method, PATH, skip_host=True, skip_accept_encoding=True)
            for name, value in (*SECURE.items(), *request.headers):
                connection.putheader(name, value)
            if request.framing == "length":
                connection.putheader("Content-Length", str(len(request.body)))
            elif request.framing == "chunked":
                connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders(request.body)
            if request.framing != "length":
                assert connection.sock is not None
                # The server may have closed already; then its answer, if any, is there to read.
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_WR)
            answer = connection.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as error:
            dropped = f"no response to {request!r}: {error!r}"
        else:
            dropped = ""
        finally:
            connection.close()
        if dropped:
            self.statuses["no answer"] += 1
            # Raised outside the handler: Hypothesis, which tells failures apart by their
            # context too, would take a reset and a close for two different failures.
            raise AssertionError(dropped)
        headers: dict[str, list[str]] = {}
        for name, value in answer.getheaders():
            headers.setdefault(name.lower(), []).append(value)
        # Built by hand: requests' prepare() refuses the hostile header values this sends.
        sent = requests.PreparedRequest()
        sent.method = request.method
        sent.url = f"{self.base_url}{PATH}"
        sent.headers = requests.structures.CaseInsensitiveDict(dict(request.headers))
        return schemathesis.Response(
            status_code=answer.status,
            headers=headers,
            content=content,
            request=sent,
            elapsed=time.monotonic() - started,
            verify=False,
            message=answer.reason,
        )

    def _record(self, response: requests.Response | schemathesis.Response) -> None:
        """Count the answer, and check what it wrote: a 201 one user and its event, anything
        else nothing at all."""
        status = response.status_code
        self.statuses[str(status)] += 1
        before, self.written = self.written, _written()
        if status == 201:
            created = response.json()
            assert self.written == (before[0] + 1, before[1] + 1), (before, self.written)
            assert User.objects.filter(pk=created["id"], email=created["email"]).exists()
            assert OutboxEvent.objects.filter(
                event_type=UserCreated.event_type, payload__user_id=created["id"]
            ).exists()
        else:
            assert self.written == before, (
                f"a {status} answer wrote {self.written[0] - before[0]} users and "
                f"{self.written[1] - before[1]} outbox events"
            )

    def summary(self) -> str:
        total = sum(self.statuses.values())
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"{total} generated requests in {time.monotonic() - self.started:.1f} s "
            f"({by_status or 'none'})"
        )


@pytest.fixture
def web_role(start_role, role_env, request, capsys) -> Iterator[WebRole]:
    start_role("web", role_env)
    port = int(role_env["WEB_BIND"].rsplit(":", 1)[1])

    def serving() -> bool:
        try:
            response = requests.get(
                f"http://127.0.0.1:{port}{DOCUMENT_PATH}", headers=SECURE, timeout=5
            )
        except requests.ConnectionError:
            return False
        return response.status_code == 200

    assert wait_until(serving, timeout=30)
    web = WebRole(port)
    yield web
    web.session.close()
    # On the terminal whatever pytest captures, pass or fail: how much the run exercised.
    with capsys.disabled():
        print(f"\n{request.node.name}: {web.summary()}")  # noqa: T201


# --- Strategies for what a schema cannot describe ------------------------------------------------

# Any code point, NUL and lone surrogates included: whatever a JSON string can carry.
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
# Around the body limit, built by repetition rather than drawn character by character.
huge_text = st.builds(
    lambda piece, times: piece * times, st.characters(), st.integers(0, LIMIT + LIMIT // 2)
)
# The same mailbox in several forms, so that registrations collide (409).
SAME_MAILBOX = [
    "ada@example.com",
    "ADA@Example.COM",
    "  ada@example.com  ",
    "ada@exämple.com",
    "ada@xn--exmple-cua.com",
    "ADA@EXÄMPLE.COM",
]
# Letters whose case or compatibility forms cross into or out of ASCII (dotted and dotless i,
# long s, Kelvin sign, sharp s, a ligature, full-width and Angstrom letters, a combining dot):
# case-insensitive regexes and Unicode normalization treat them in ways that surprise.
TRICKY_LETTERS = "\u0130\u0131\u017f\u212a\u00df\ufb01\uff21\u212b\u01c5\u0307"


def _with_letter(local_part: str, letter: str, position: int) -> str:
    position %= len(local_part) + 1
    return local_part[:position] + letter + local_part[position:]


local_parts = st.builds(
    _with_letter,
    st.text(st.sampled_from(string.ascii_letters + string.digits + ".+-_"), max_size=12),
    st.just("") | st.sampled_from(TRICKY_LETTERS),
    st.integers(),
)
plausible_emails = st.builds(
    "{}@{}".format,
    local_parts,
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com",
            "ex\u00e4mple.com",
            "xn--exmple-cua.com",
            "ex\u212aample.com",
            "ex\u0131mple.com",
            "[127.0.0.1]",
            "localhost",
        ]
    ),
)
emails = st.one_of(
    st.emails(),
    plausible_emails,
    st.sampled_from(SAME_MAILBOX),
    st.builds("{}@{}".format, any_text, any_text),
    any_text,
    huge_text,
)
passwords = st.one_of(
    st.none(), st.sampled_from(["Quartz-Falcon-4821", "Juniper-Comet-7316"]), any_text, huge_text
)
# Brackets and quotes inside strings, which must not count as nesting.
names = st.one_of(
    any_text, huge_text, st.sampled_from(["[" * 150, "]]]}}}", '"\\"[{', "{" * 33 + "x"])
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=8,
)
registrations = st.builds(
    lambda extra, fields: {**extra, **fields},
    st.one_of(st.just({}), st.dictionaries(any_text, json_values, max_size=2)),
    st.fixed_dictionaries(
        {"email": emails | json_values},
        optional={"password": passwords, "first_name": names, "last_name": names | json_values},
    ),
)


def _encode(value: object, ascii_only: bool) -> bytes:
    """JSON text; not ASCII-only, a lone surrogate becomes bytes that are not UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _nested(depth: int, kind: str) -> bytes:
    return {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "in a field": b'{"email": "x@example.com", "first_name": '
        + b"[" * depth
        + b"]" * depth
        + b"}",
        "unclosed": b"[" * depth,
        "closed first": b"]" * depth + b"[" * depth,
    }[kind]


def _mutate(body: bytes, position: int, replacement: bytes, cut: int) -> bytes:
    position %= len(body) + 1
    return body[:position] + replacement + body[position + cut :]


# Registrations that may well succeed: the write path, and collisions, under hostile input too.
plausible_registrations = st.fixed_dictionaries(
    {"email": plausible_emails | st.sampled_from(SAME_MAILBOX)},
    optional={
        "password": st.sampled_from([None, "Quartz-Falcon-4821"]),
        "first_name": st.text(max_size=20),
        "last_name": names,
    },
)
plausible_bodies = st.builds(_encode, plausible_registrations, st.booleans())
json_bodies = st.builds(
    _encode, plausible_registrations | registrations | json_values, st.booleans()
)
bodies = st.one_of(
    json_bodies,
    st.binary(max_size=300),
    st.builds(
        _nested,
        st.integers(0, 40) | st.integers(0, 30_000),
        st.sampled_from(["arrays", "objects", "in a field", "unclosed", "closed first"]),
    ),
    st.builds(_mutate, json_bodies, st.integers(), st.binary(max_size=3), st.integers(0, 3)),
    # Other encodings JSON allows, a byte-order mark, and numbers Python will not parse.
    st.builds(
        lambda value, codec: json.dumps(value).encode(codec),
        registrations,
        st.sampled_from(["utf-16", "utf-16-be", "utf-32", "utf-8-sig"]),
    ),
    st.builds(lambda digits: b'{"email": ' + b"9" * digits + b"}", st.integers(4000, 60_000)),
    st.builds(lambda value: b'{"email": "a@example.com", "email": ' + value + b"}", json_bodies),
).map(
    # Past the limit every body is the same 413. A client still sending megabytes may not see it:
    # gunicorn drains at most 64 KiB of a body the application did not read, then closes.
    lambda body: body[: 2 * LIMIT]
)
JSON_MEDIA_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "application/vnd.api+json; charset=UTF-8",
    "APPLICATION/JSON",
]
OTHER_MEDIA_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "json",
    "",
]
# Header values HTTP allows: visible ASCII and Latin-1 (obs-text), no control characters.
header_values = st.text(
    st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=200
).map(str.strip)
header_tokens = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}", fullmatch=True)
media_types = st.one_of(
    st.sampled_from(JSON_MEDIA_TYPES),
    st.sampled_from(OTHER_MEDIA_TYPES),
    st.builds("{}/{}".format, header_tokens, header_tokens),
    st.builds("application/json; {}={}".format, header_tokens, header_values),
    header_values,
)
# The ingress's own (Host, X-Forwarded-Proto), the framing, hop-by-hop headers; and those the
# server-layer test below sends (Expect, a second Content-Type).
NOT_EXTRA_HEADERS = {
    "host",
    "x-forwarded-proto",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "expect",
    "content-type",
}
KNOWN_HEADERS = [
    "Accept",
    "Accept-Charset",
    "Accept-Encoding",
    "Accept-Language",
    "Authorization",
    "Content-Encoding",
    "Content-Language",
    "Cookie",
    "Forwarded",
    "If-Match",
    "Origin",
    "Range",
    "Referer",
    "User-Agent",
    "X-CSRFToken",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-HTTP-Method-Override",
    "X-Request-ID",
]
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(KNOWN_HEADERS)
        | header_tokens.filter(lambda name: name.lower() not in NOT_EXTRA_HEADERS),
        header_values,
    ),
    max_size=6,
)
# Methods as gunicorn reads them: 3 to 20 upper-case letters.
methods = st.one_of(
    st.just("POST"),
    st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]),
    st.from_regex(r"[A-Z]{3,20}", fullmatch=True),
)


@st.composite
def chunked_framings(draw: st.DrawFn) -> bytes:
    """A body in chunks of any sizes, with extensions and trailers, often framed wrongly: a
    size that is no hex number, a bad extension or trailer, a chunk without its CRLF or cut
    short, no last chunk."""
    body = draw(plausible_bodies | bodies)
    chunks = b""
    while body:
        size = draw(st.integers(1, len(body)))
        piece, body = body[:size], body[size:]
        size_line = draw(st.sampled_from([b"%x", b"%X", b"000%x", b"%x;ext=1"])) % len(piece)
        chunks += size_line + b"\r\n" + piece + b"\r\n"
    last_chunk, trailer = b"0", draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
    corruption = draw(
        st.sampled_from(
            [
                "none",
                "none",
                "size",
                "extension",
                "trailer",
                "no CRLF",
                "cut short",
                "no last chunk",
            ]
        )
    )
    garbage = draw(st.binary(min_size=1, max_size=8).filter(lambda b: b"\n" not in b))
    if corruption == "extension":
        last_chunk += b";" + garbage
    elif corruption == "trailer":
        trailer = garbage + b"\r\n"
    framing = chunks + last_chunk + b"\r\n" + trailer + b"\r\n"
    if corruption == "size":
        framing = garbage + b"\r\n" + framing
    elif corruption == "no CRLF":
        framing = framing.replace(b"\r\n", b"", 2)
    elif corruption == "cut short":
        framing = framing[: draw(st.integers(0, len(framing) - 1))]
    elif corruption == "no last chunk":
        framing = chunks
    return framing


# Domain labels in Latin, with letters of other scripts that look Latin (Cyrillic, Greek).
domain_labels = st.text(
    st.sampled_from(string.ascii_lowercase + string.digits + "-")
    | st.sampled_from("\u00e4\u00f6\u00fc\u00df\u00e9\u00f1")
    | st.sampled_from("\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456")
    | st.sampled_from("\u03b1\u03bf\u03b9\u03ba"),
    min_size=1,
    max_size=12,
)


def _registration(email: str) -> RawRequest:
    return RawRequest(
        "POST", (("Content-Type", "application/json"),), _encode({"email": email}, True)
    )


# Requests gunicorn reads itself, before the application sees them: an expectation other than
# 100-continue, a second Content-Type, a header field or header block over gunicorn's limits,
# a transfer coding other than chunked, a Content-Length that is no number.
server_layer_requests = {
    "expect": st.builds(
        lambda value: RawRequest(
            "POST", (("Content-Type", "application/json"), ("Expect", value)), b"{}"
        ),
        header_values.filter(lambda value: value.lower() != "100-continue"),
    ),
    "second content type": st.builds(
        lambda first, second: RawRequest(
            "POST", (("Content-Type", first), ("Content-Type", second)), b"{}"
        ),
        media_types,
        media_types,
    ),
    "long header": st.builds(
        lambda name, size: RawRequest(
            "POST", (("Content-Type", "application/json"), (name, "x" * size)), b"{}"
        ),
        st.sampled_from(KNOWN_HEADERS),
        st.integers(8_200, 20_000),
    ),
    "many headers": st.builds(
        lambda count: RawRequest(
            "POST",
            (("Content-Type", "application/json"), *((f"X-Extra-{n}", "1") for n in range(count))),
            b"{}",
        ),
        st.integers(100, 300),
    ),
    "transfer coding": st.builds(
        lambda coding, body: RawRequest(
            "POST",
            (("Content-Type", "application/json"), ("Transfer-Encoding", coding)),
            body,
            framing="as given",
        ),
        st.sampled_from(["gzip", "deflate", "compress", "identity", "chunked, gzip"])
        | header_tokens,
        json_bodies,
    ),
    "content length": st.builds(
        lambda length, body: RawRequest(
            "POST",
            (("Content-Type", "application/json"), ("Content-Length", length)),
            body,
            framing="as given",
        ),
        st.sampled_from(["", "-1", "+2", "0x10", "2, 2", "1e3", "²"])
        | st.builds(
            "{}{}{}".format,
            st.from_regex(r"[0-9]*", fullmatch=True),
            st.characters(codec="latin-1", exclude_categories=("Cc", "Nd")),
            st.from_regex(r"[0-9]*", fullmatch=True),
        ),
        json_bodies,
    ),
}


# --- Properties --------------------------------------------------------------------------------


def test_requests_generated_from_the_document_get_documented_answers(web_role):
    """Schemathesis: bodies that fit the document and bodies that break it."""
    register = web_role.schema[PATH]["POST"]
    options = web_role.schema[PATH]["OPTIONS"]

    @budget(400)
    @given(case=register.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def fitting(case):
        web_role.send_case(case)

    @budget(800)
    @given(case=register.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def breaking(case):
        web_role.send_case(case)

    @budget(10)
    @given(case=options.as_strategy())
    def allowed_methods(case):
        web_role.send_case(case)

    fitting()
    breaking()
    allowed_methods()
    assert web_role.statuses["201"], "no generated registration succeeded"


def test_hostile_bodies_get_documented_answers_and_write_nothing(web_role):
    """Arbitrary bytes, JSON of any shape, deep nesting, huge strings, NUL and surrogates; a few
    in a row, so that one mailbox in several forms collides."""

    @budget(500)
    @given(
        in_turn=st.lists(
            st.builds(
                lambda media_type, body: RawRequest("POST", (("Content-Type", media_type),), body),
                st.sampled_from(JSON_MEDIA_TYPES),
                plausible_bodies | bodies,
            ),
            min_size=1,
            max_size=3,
        )
    )
    def hostile(in_turn):
        web_role.send(*in_turn)

    hostile()


def test_any_method_and_headers_get_documented_answers(web_role):
    """Other methods, media types that are not JSON, and headers of any name and value."""

    @budget(600)
    @given(
        request=st.builds(
            lambda method, media_type, headers, body: RawRequest(
                method, (("Content-Type", media_type), *headers), body
            ),
            methods,
            media_types,
            extra_headers,
            st.just(b"") | json_bodies,
        )
    )
    def hostile(request):
        web_role.send(request)

    hostile()


def test_chunked_bodies_however_framed_get_documented_answers(web_role):
    """Chunked bodies, well or badly framed; the client closes its side once all is sent."""

    @budget(250)
    @given(
        request=st.builds(
            lambda media_type, framing: RawRequest(
                "POST", (("Content-Type", media_type),), framing, framing="chunked"
            ),
            st.sampled_from(JSON_MEDIA_TYPES),
            chunked_framings(),
        )
    )
    def hostile(request):
        web_role.send(request)

    hostile()


def test_headers_the_server_reads_itself_get_documented_answers(web_role, subtests):
    """What gunicorn refuses before the application sees it is answered as documented too."""
    for kind, strategy in server_layer_requests.items():
        with subtests.test(kind):

            @budget(30)
            @given(request=strategy)
            def hostile(request):
                web_role.send(request)

            hostile()


def test_one_mailbox_gets_one_answer_whatever_the_form_of_its_domain(web_role):
    """An internationalized domain and its ASCII (IDNA) form are one mailbox: whichever comes
    first, the second gets 409 if the first was registered, and the same refusal if not."""

    @budget(120)
    @given(local_part=local_parts, label=domain_labels, unicode_first=st.booleans())
    def same_mailbox(local_part, label, unicode_first):
        unicode_form = f"{local_part}@{label}.com"
        try:
            ascii_form = f"{local_part}@{idna.encode(f'{label}.com', uts46=True).decode()}"
        except idna.IDNAError:
            assume(False)
        forms = [unicode_form, ascii_form] if unicode_first else [ascii_form, unicode_form]
        first, second = web_role.send(*map(_registration, forms))
        assert (first, second) in {(201, 409), (400, 400)}, (forms, first, second)

    same_mailbox()
