"""The API's OpenAPI 3.1 document, built from the same declarations the views enforce: the
registration fields, the body limit, the password validators, the problem responses."""

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    get_default_password_validators,
)
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from app.core.api import MAX_JSON_DEPTH, PROBLEM_CONTENT_TYPE
from app.users.views import REGISTRATION_FIELDS, UserRegistrationView

_RETRY_AFTER = {"$ref": "#/components/headers/RetryAfter"}
_REQUEST_ID = {"$ref": "#/components/headers/RequestId"}


def _problem_response(
    status: HTTPStatus, description: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A problem+json response whose body names its own status, as every ApiError does."""
    return {
        "description": description,
        "headers": {"X-Request-ID": _REQUEST_ID, **(headers or {})},
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {
                            "properties": {
                                "status": {"const": status.value},
                                "title": {"const": status.phrase},
                            }
                        },
                    ]
                }
            }
        },
    }


def _password_min_length() -> int | None:
    lengths = [
        validator.min_length
        for validator in get_default_password_validators()
        if isinstance(validator, MinimumLengthValidator)
    ]
    return max(lengths, default=None)


def _registration_schema() -> dict[str, Any]:
    properties = {name: field.json_schema() for name, field in REGISTRATION_FIELDS.items()}
    # Django's EmailValidator, which accepts internationalized domains (RFC 6531).
    properties["email"]["format"] = "idn-email"
    if (min_length := _password_min_length()) is not None:
        properties["password"]["minLength"] = min_length
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, field in REGISTRATION_FIELDS.items() if field.required],
        "properties": properties,
    }


def openapi_document() -> dict[str, Any]:
    limit = settings.API_MAX_BODY_BYTES
    allowed = ", ".join(method.upper() for method in UserRegistrationView.http_method_names)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "die-hard API",
            "version": settings.APP_VERSION,
            "description": (
                "User registration; each registration publishes a user_created event. Every "
                "error is an RFC 9457 problem (application/problem+json)."
            ),
        },
        "paths": {
            "/api/v1/users/": {
                "post": {
                    "operationId": "users_register",
                    "summary": "Register a user",
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"A JSON object of at most {limit} bytes (by Content-Length, or "
                            "chunked); any `+json` media type is read as JSON too."
                        ),
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/UserRegistration"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The user was registered.",
                            "headers": {"X-Request-ID": _REQUEST_ID},
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}
                                }
                            },
                        },
                        "400": _problem_response(
                            HTTPStatus.BAD_REQUEST,
                            "The body is not valid JSON, is nested more than "
                            f"{MAX_JSON_DEPTH} levels deep, or is not a JSON object; or its "
                            "fields are invalid (see `errors`): unknown fields, wrong types, "
                            "values too long, text holding NUL or an unpaired surrogate, an "
                            "invalid email, a password the validators refuse.",
                        ),
                        "405": _problem_response(
                            HTTPStatus.METHOD_NOT_ALLOWED,
                            f"The method is not one of {allowed}.",
                            {"Allow": {"$ref": "#/components/headers/Allow"}},
                        ),
                        "409": _problem_response(
                            HTTPStatus.CONFLICT,
                            "The email is already registered (compared case-insensitively, "
                            "internationalized domains in their ASCII form).",
                        ),
                        "413": _problem_response(
                            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"The body is larger than {limit} bytes (API_MAX_BODY_BYTES), by "
                            "its Content-Length or, chunked, as read.",
                        ),
                        "415": _problem_response(
                            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                            "The Content-Type is not application/json (nor a `+json` type).",
                        ),
                        "417": _problem_response(
                            HTTPStatus.EXPECTATION_FAILED,
                            "An `Expect` header other than `100-continue` (answered by the HTTP "
                            "server before the application).",
                        ),
                        "431": _problem_response(
                            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                            "A header field longer than 8190 bytes, or more than 100 header "
                            "fields (answered by the HTTP server before the application).",
                        ),
                        "429": _problem_response(
                            HTTPStatus.TOO_MANY_REQUESTS,
                            "Too many registrations from this client, or from all clients "
                            "together (REGISTRATION_RATE_PER_CLIENT, REGISTRATION_RATE_GLOBAL).",
                            {"Retry-After": _RETRY_AFTER},
                        ),
                        "503": _problem_response(
                            HTTPStatus.SERVICE_UNAVAILABLE,
                            "This server is already hashing as many passwords as it may "
                            "(REGISTRATION_CONCURRENT_HASHES), or its database session was "
                            "lost mid-request (nothing was written); try again after "
                            "Retry-After.",
                            {"Retry-After": _RETRY_AFTER},
                        ),
                    },
                },
                "options": {
                    "operationId": "users_options",
                    "summary": "The methods the registration endpoint allows",
                    "responses": {
                        "200": {
                            "description": "No body; `Allow` lists the methods.",
                            "headers": {
                                "Allow": {"$ref": "#/components/headers/Allow"},
                                "X-Request-ID": _REQUEST_ID,
                            },
                        }
                    },
                },
            }
        },
        "components": {
            "headers": {
                "Allow": {
                    "description": "The methods the endpoint allows, comma-separated.",
                    "required": True,
                    "schema": {"type": "string", "examples": [allowed]},
                },
                "RetryAfter": {
                    "description": "Seconds to wait before trying again.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                },
                "RequestId": {
                    "description": (
                        "The request's id in the logs: the client's own X-Request-ID when it "
                        "is a short plain token, else a new one."
                    ),
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                },
            },
            "schemas": {
                "UserRegistration": _registration_schema(),
                "User": {
                    "type": "object",
                    "required": ["id", "email", "first_name", "last_name", "date_joined"],
                    "properties": {
                        "id": {"type": "integer"},
                        "email": {
                            "type": "string",
                            "format": "email",
                            "description": "Lowercased; an internationalized domain in its "
                            "ASCII (IDNA) form.",
                        },
                        "first_name": {"type": "string"},
                        "last_name": {"type": "string"},
                        "date_joined": {"type": "string", "format": "date-time"},
                    },
                },
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details.",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {
                            "type": "object",
                            "description": "Messages per field.",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }


@require_GET
def openapi_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())
