"""The OpenAPI document says what the registration endpoint answers: every status it can send,
every error a problem naming its own status, and the headers a client needs (Retry-After to
back off, Allow after a 405). The answers the property tests (tests/runtime/
test_api_properties.py) cannot provoke, with rate limits off and one request at a time, are
checked against the document here."""

import json
from http import HTTPStatus

import pytest
from django.core.cache import cache
from openapi_schema_validator import OAS31Validator

from app.config.openapi import openapi_document
from tests.support.hashing import hashing_slots_taken

URL = "/api/v1/users/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


@pytest.fixture
def document() -> dict:
    return openapi_document()


def _resolved(document: dict, item: dict) -> dict:
    """`item`, or what its `$ref` (#/components/...) points to."""
    if "$ref" not in item:
        return item
    found = document
    for part in item["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    return found


def _validator(document: dict, schema: dict) -> OAS31Validator:
    # The components beside the schema, so that its #/components/... references resolve.
    return OAS31Validator({**schema, "components": document["components"]})


def assert_documented(document: dict, response) -> None:
    """`response` is one the document declares for a registration: its status, media type,
    body schema and required headers."""
    declared = document["paths"][URL]["post"]["responses"][str(response.status_code)]
    ((media_type, content),) = declared["content"].items()
    assert response["Content-Type"] == media_type
    _validator(document, content["schema"]).validate(json.loads(response.content))
    for name, header in declared.get("headers", {}).items():
        header = _resolved(document, header)
        if header["required"]:
            assert name in response, name
        if name in response:
            value = response[name]
            if header["schema"]["type"] == "integer":
                value = int(value)
            _validator(document, header["schema"]).validate(value)


def test_the_document_lists_every_answer_of_the_registration_endpoint(document):
    responses = document["paths"][URL]["post"]["responses"]

    assert set(responses) == {"201", "400", "405", "409", "413", "415", "417", "429", "431", "503"}


def test_every_error_is_a_problem_naming_its_own_status(document):
    errors = {
        code: response
        for code, response in document["paths"][URL]["post"]["responses"].items()
        if code != "201"
    }

    for code, response in errors.items():
        status = HTTPStatus(int(code))
        assert list(response["content"]) == [PROBLEM_CONTENT_TYPE], code
        validator = _validator(document, response["content"][PROBLEM_CONTENT_TYPE]["schema"])
        problem = {"type": "about:blank", "title": status.phrase, "status": status.value}
        assert validator.is_valid({**problem, "detail": "why"}), code
        assert not validator.is_valid({**problem, "detail": "why", "status": 500}), code


@pytest.mark.parametrize(
    ("code", "header"), [("405", "Allow"), ("429", "Retry-After"), ("503", "Retry-After")]
)
def test_the_headers_a_client_acts_on_are_declared_required(document, code, header):
    declared = document["paths"][URL]["post"]["responses"][code]["headers"]

    assert _resolved(document, declared[header])["required"] is True


@pytest.fixture
def counters():
    """Rate-limit counters start from zero (they live in the test Redis database)."""
    cache.clear()
    yield
    cache.clear()


def _register(client, email: str):
    body = json.dumps({"email": email, "password": "Juniper-Comet-7316"})
    return client.post(URL, body, content_type="application/json")


@pytest.mark.django_db
def test_a_rate_limited_registration_is_answered_as_documented(
    client, settings, counters, document
):
    settings.REGISTRATION_RATE_PER_CLIENT = "1/m"
    assert _register(client, "first@example.com").status_code == HTTPStatus.CREATED

    limited = _register(client, "second@example.com")

    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert_documented(document, limited)


@pytest.mark.django_db
def test_a_registration_finding_no_hashing_slot_is_answered_as_documented(
    client, settings, document
):
    with hashing_slots_taken(settings):
        busy = _register(client, "busy@example.com")

    assert busy.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert_documented(document, busy)


def test_another_method_is_answered_as_documented(client, document):
    refused = client.get(URL)

    assert refused.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert_documented(document, refused)
