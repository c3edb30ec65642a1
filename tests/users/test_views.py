import json
import threading
from contextlib import contextmanager
from http import HTTPStatus

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from app.users.models import User
from app.users.views import REGISTRATION_FIELDS

URL = "/api/v1/users/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
STRONG_PASSWORD = "Juniper-Comet-7316"
PUBLIC_FIELDS = {"id", "email", "first_name", "last_name", "date_joined"}


def post_json(client: Client, payload) -> object:
    return client.post(URL, json.dumps(payload), content_type="application/json")


def problem(response, status: HTTPStatus) -> dict:
    """The RFC 9457 body of an error response, after checking its status and content type."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == status.phrase
    assert body["status"] == status.value
    assert body["detail"]
    return body


# --- 201 -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_returns_the_public_fields_of_the_new_user(client):
    response = post_json(
        client,
        {
            "email": "Ada@Example.com",
            "password": STRONG_PASSWORD,
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
    )

    assert response.status_code == HTTPStatus.CREATED
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    user = User.objects.get()
    assert body["id"] == user.pk
    assert body["email"] == "ada@example.com"
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")
    assert body["date_joined"] == user.date_joined.isoformat()
    assert user.check_password(STRONG_PASSWORD)
    assert user.password.encode() not in response.content
    assert STRONG_PASSWORD.encode() not in response.content


@pytest.mark.parametrize(
    "payload", [{"email": "grace@example.com"}, {"email": "grace@example.com", "password": None}]
)
@pytest.mark.django_db
def test_register_without_password_creates_a_user_who_cannot_log_in(client, payload):
    response = post_json(client, payload)

    assert response.status_code == HTTPStatus.CREATED
    assert not User.objects.get().has_usable_password()


# --- 400 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "invalid_fields"),
    [
        pytest.param({"email": "not-an-email"}, {"email"}, id="invalid-email"),
        pytest.param({}, {"email"}, id="missing-email"),
        pytest.param({"email": "a" * 250 + "@example.com"}, {"email"}, id="email-too-long"),
        pytest.param({"email": "ada@example.com", "password": "Zq7!x"}, {"password"}, id="short"),
        pytest.param(
            {"email": "ada@example.com", "password": "password123"}, {"password"}, id="common"
        ),
        pytest.param(
            {"email": "ada@example.com", "password": "84930217"}, {"password"}, id="numeric"
        ),
        pytest.param(
            {"email": "ada.lovelace@example.com", "password": "ada.lovelace"},
            {"password"},
            id="like-the-email",
        ),
        pytest.param(
            {"email": "ada@example.com", "is_superuser": True}, {"is_superuser"}, id="unknown"
        ),
        pytest.param(
            {"email": "ada@example.com", "is_staff": True, "username": "ada"},
            {"is_staff", "username"},
            id="unknown-fields",
        ),
        pytest.param({"email": 42}, {"email"}, id="email-integer"),
        pytest.param({"email": ["ada@example.com"]}, {"email"}, id="email-array"),
        pytest.param({"email": "ada@example.com", "password": 12345678}, {"password"}, id="pw-int"),
        pytest.param({"email": "ada@example.com", "first_name": True}, {"first_name"}, id="bool"),
        pytest.param({"email": "ada@example.com", "last_name": {"a": 1}}, {"last_name"}, id="obj"),
        pytest.param({"email": None}, {"email"}, id="email-null"),
        pytest.param({"email": "ada@example.com", "first_name": None}, {"first_name"}, id="null"),
        pytest.param(
            {"email": "ada@example.com", "last_name": "x" * 151}, {"last_name"}, id="too-long"
        ),
        pytest.param(
            {"email": None, "password": 1, "nickname": "a"},
            {"email", "password", "nickname"},
            id="several",
        ),
    ],
)
@pytest.mark.django_db
def test_register_names_every_invalid_field(client, payload, invalid_fields):
    body = problem(post_json(client, payload), HTTPStatus.BAD_REQUEST)

    assert set(body["errors"]) == invalid_fields
    assert all(messages and isinstance(messages, list) for messages in body["errors"].values())
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "raw", [b"[]", b'["ada@example.com"]', b'"ada@example.com"', b"null", b"42"]
)
def test_register_refuses_json_that_is_not_an_object(client, raw):
    response = client.post(URL, raw, content_type="application/json")

    assert "JSON object" in problem(response, HTTPStatus.BAD_REQUEST)["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'email': 'ada@example.com'}", b'{"email": "ada@example.com",}', b"\xff\xfe"],
)
def test_register_refuses_invalid_json(client, raw):
    # CONTENT_TYPE again in META: the test client drops the content type of an empty body.
    response = client.post(
        URL, raw, content_type="application/json", CONTENT_TYPE="application/json"
    )

    assert "not valid JSON" in problem(response, HTTPStatus.BAD_REQUEST)["detail"]


# --- 409 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["hopper@example.com", "HOPPER@Example.Com"])
@pytest.mark.django_db
def test_register_refuses_an_email_already_registered(client, user_factory, email):
    user_factory(email="hopper@example.com")

    body = problem(
        post_json(client, {"email": email, "password": STRONG_PASSWORD}), HTTPStatus.CONFLICT
    )

    assert set(body["errors"]) == {"email"}
    assert User.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_create_exactly_one_user():
    # One address in eight spellings: the uniqueness must ignore letter case under a race too.
    emails = ["race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.COM"] * 2
    barrier = threading.Barrier(len(emails))
    statuses: list[int | None] = [None] * len(emails)

    def register(index: int) -> None:
        client = Client(raise_request_exception=False)
        try:
            barrier.wait(timeout=10)
            payload = {"email": emails[index], "password": STRONG_PASSWORD}
            statuses[index] = post_json(client, payload).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(index,)) for index in range(len(emails))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [HTTPStatus.CREATED] + [HTTPStatus.CONFLICT] * (len(emails) - 1)
    assert list(User.objects.values_list("email", flat=True)) == ["race@example.com"]


# --- 503: the database connection lost mid-request --------------------------------------------


@contextmanager
def connection_terminated_before(statement_start: str):
    """pg_terminate_backend on this request's own PostgreSQL session just before it runs a
    statement starting with `statement_start` (as an operator, a failover or a pooler would
    end it): the statement then fails as it would in production."""

    def terminate_first(execute, sql, params, many, context):
        if sql.startswith(statement_start):
            own = context["connection"].connection.info
            with psycopg.connect(own.dsn, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [own.backend_pid])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(terminate_first):
        yield


@pytest.mark.django_db(transaction=True)
def test_a_database_connection_lost_mid_request_is_503_with_retry_after(client):
    with connection_terminated_before('INSERT INTO "users_user"'):
        response = post_json(client, {"email": "cut@example.com", "password": STRONG_PASSWORD})

    body = problem(response, HTTPStatus.SERVICE_UNAVAILABLE)
    assert response["Retry-After"] == "1"
    assert "database" in body["detail"].lower()
    assert not User.objects.filter(email="cut@example.com").exists()
    # The next request gets a new session and goes through.
    assert post_json(client, {"email": "cut@example.com"}).status_code == HTTPStatus.CREATED


# --- 413, 415, 405 ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_refuses_a_body_over_the_limit(client):
    limit = settings.API_MAX_BODY_BYTES

    def body_of_size(size: int) -> bytes:
        skeleton = json.dumps({"email": "ada@example.com", "first_name": ""}).encode()
        padded = json.dumps(
            {"email": "ada@example.com", "first_name": "x" * (size - len(skeleton))}
        )
        return padded.encode()

    at_limit = client.post(URL, body_of_size(limit), content_type="application/json")
    over_limit = client.post(URL, body_of_size(limit + 1), content_type="application/json")

    # At the limit the body is read (and its over-long first_name refused); one byte more is not.
    assert set(problem(at_limit, HTTPStatus.BAD_REQUEST)["errors"]) == {"first_name"}
    assert str(limit) in problem(over_limit, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)["detail"]
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"email": "ada@example.com"}'),
        ("application/x-www-form-urlencoded", b"email=ada%40example.com"),
        ("application/xml", b"<user><email>ada@example.com</email></user>"),
    ],
)
@pytest.mark.django_db
def test_register_refuses_a_body_that_is_not_json(client, content_type, body):
    response = client.post(URL, body, content_type=content_type)

    assert "JSON" in problem(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)["detail"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_refuses_a_multipart_form(client):
    response = client.post(URL, {"email": "ada@example.com", "password": STRONG_PASSWORD})

    problem(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    assert not User.objects.exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.django_db
def test_register_endpoint_allows_only_post(client, method):
    payload = json.dumps({"email": "ada@example.com", "password": STRONG_PASSWORD})

    response = client.generic(method, URL, payload, content_type="application/json")

    assert method in problem(response, HTTPStatus.METHOD_NOT_ALLOWED)["detail"]
    assert {allowed.strip() for allowed in response["Allow"].split(",")} == {"POST", "OPTIONS"}
    assert not User.objects.exists()


# --- OpenAPI ---------------------------------------------------------------------------------


@pytest.fixture
def openapi_document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"
    return response.json()


def component_validator(document: dict, name: str) -> OAS31Validator:
    return OAS31Validator(document["components"]["schemas"][name])


def test_openapi_document_is_valid_openapi_3_1(openapi_document):
    assert openapi_document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(openapi_document).validate()


def test_openapi_registration_schema_describes_the_fields_the_view_accepts(openapi_document):
    schema = openapi_document["components"]["schemas"]["UserRegistration"]

    assert set(schema["properties"]) == set(REGISTRATION_FIELDS)
    assert schema["additionalProperties"] is False


@pytest.mark.django_db
def test_openapi_required_fields_are_the_ones_the_view_requires(client, openapi_document):
    schema = openapi_document["components"]["schemas"]["UserRegistration"]

    body = problem(post_json(client, {}), HTTPStatus.BAD_REQUEST)

    assert set(schema["required"]) == set(body["errors"])


@pytest.mark.django_db
def test_openapi_schemas_describe_the_responses(client, openapi_document):
    payload = {
        "email": "ada@example.com",
        "password": STRONG_PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    component_validator(openapi_document, "UserRegistration").validate(payload)

    created = post_json(client, payload)
    conflict = post_json(client, payload)

    assert created.status_code == HTTPStatus.CREATED
    component_validator(openapi_document, "User").validate(created.json())
    problem(conflict, HTTPStatus.CONFLICT)
    component_validator(openapi_document, "Problem").validate(conflict.json())


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "ada@example.com", "is_superuser": True},
        {"email": 42},
        {"email": None},
        {"email": "ada@example.com", "first_name": None},
        {"email": "ada@example.com", "last_name": "x" * 151},
        {"password": STRONG_PASSWORD},
    ],
)
@pytest.mark.django_db
def test_openapi_registration_schema_rejects_what_the_view_rejects(
    client, openapi_document, payload
):
    validator = component_validator(openapi_document, "UserRegistration")

    assert not validator.is_valid(payload)
    problem(post_json(client, payload), HTTPStatus.BAD_REQUEST)


# --- Django admin ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_superuser_can_open_the_admin_user_pages(client, superuser, user_factory):
    other = user_factory(email="lin@example.com")
    client.force_login(superuser)

    index = client.get("/admin/")
    changelist = client.get("/admin/users/user/")
    add = client.get("/admin/users/user/add/")
    change = client.get(f"/admin/users/user/{other.pk}/change/")

    assert [page.status_code for page in (index, changelist, add, change)] == [200] * 4
    assert b"lin@example.com" in changelist.content
    assert b"lin@example.com" in change.content


@pytest.mark.django_db
def test_admin_login_ignores_the_letter_case_of_the_email(client, user_factory):
    user_factory(email="root@example.com", password=STRONG_PASSWORD, is_staff=True)

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "Root@Example.COM", "password": STRONG_PASSWORD},
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/admin/"


@pytest.mark.django_db
def test_admin_add_form_stores_the_email_lowercased_and_keeps_it_unique(client, superuser):
    client.force_login(superuser)
    form = {"usable_password": "true", "password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD}

    created = client.post("/admin/users/user/add/", {"email": "Mixed@Example.COM", **form})
    duplicate = client.post("/admin/users/user/add/", {"email": "MIXED@example.com", **form})

    assert created.status_code == HTTPStatus.FOUND
    assert duplicate.status_code == HTTPStatus.OK
    assert "email" in duplicate.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="mixed@example.com").count() == 1
    assert User.objects.filter(email="mixed@example.com").exists()
