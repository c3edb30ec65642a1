"""JSON API plumbing shared by the views: parsing a JSON object body and problem responses.

Errors follow RFC 9457 (problem details): `{"type", "title", "status", "detail", "errors"}`.
"""

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import View

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, detail: str, errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def problem_response(
    status: HTTPStatus, detail: str, errors: dict[str, list[str]] | None = None
) -> JsonResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": status.phrase,
        "status": status.value,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status.value, content_type=PROBLEM_CONTENT_TYPE)


@dataclass(frozen=True)
class Field:
    """One property of a JSON request body: its type, whether it is required, its limits."""

    json_type: str
    description: str
    required: bool = False
    nullable: bool = False
    max_length: int | None = None

    _PYTHON_TYPES: ClassVar[dict[str, type[Any]]] = {"string": str, "integer": int, "boolean": bool}

    def check(self, value: Any) -> list[str]:
        if value is None:
            return [] if self.nullable else ["This field may not be null."]
        python_type = self._PYTHON_TYPES[self.json_type]
        if not isinstance(value, python_type) or (python_type is int and isinstance(value, bool)):
            return [f"Expected a {self.json_type}, got {_json_type_name(value)}."]
        if self.max_length is not None and len(value) > self.max_length:
            return [f"Ensure this value has at most {self.max_length} characters."]
        return []

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": [self.json_type, "null"] if self.nullable else self.json_type,
            "description": self.description,
        }
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


def _json_type_name(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer"}
    return names.get(type(value), "number" if isinstance(value, float) else "null")


def parse_json_object(request: HttpRequest, fields: dict[str, Field]) -> dict[str, Any]:
    """The request's JSON object, checked against `fields`; ApiError names what is wrong."""
    content_type = request.content_type or ""
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "The request body must be JSON (application/json)."
        )
    declared_length = request.META.get("CONTENT_LENGTH") or "0"
    if not declared_length.isdigit() or int(declared_length) > settings.API_MAX_BODY_BYTES:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The request body must be at most {settings.API_MAX_BODY_BYTES} bytes.",
        )
    try:
        payload = json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"The request body is not valid JSON: {error}"
        ) from None
    if not isinstance(payload, dict):
        raise ApiError(HTTPStatus.BAD_REQUEST, "The request body must be a JSON object.")

    errors: dict[str, list[str]] = {}
    for name in payload.keys() - fields.keys():
        errors[name] = ["Unknown field."]
    for name, field in fields.items():
        if name in payload:
            if messages := field.check(payload[name]):
                errors[name] = messages
        elif field.required:
            errors[name] = ["This field is required."]
    if errors:
        raise ApiError(HTTPStatus.BAD_REQUEST, "The request body has invalid fields.", errors)
    return payload


class JsonApiView(View):
    """A view whose every error, including 405, is a JSON problem response."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except ApiError as error:
            return problem_response(error.status, error.detail, error.errors)

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = problem_response(
            HTTPStatus.METHOD_NOT_ALLOWED, f"Method {request.method} is not allowed here."
        )
        # View._allowed_methods() is Django's, though private: django-stubs leaves it out.
        allowed = self._allowed_methods()  # type: ignore[attr-defined]
        response["Allow"] = ", ".join(method.upper() for method in allowed)
        return response
