"""JSON API plumbing shared by the views: parsing a JSON object body and problem responses.

Errors follow RFC 9457 (problem details): `{"type", "title", "status", "detail", "errors"}`.

Every body is checked here, once, before any view logic: its size (a Content-Length or a
chunked body, read up to API_MAX_BODY_BYTES), its nesting (at most MAX_JSON_DEPTH levels, checked
before the parser recurses), and every string field for text PostgreSQL or UTF-8 cannot hold
(NUL, unpaired surrogates): each problem is a 4xx naming it, never a 500.

A PostgreSQL session lost in the middle of a request (terminated by an operator or a failover,
a network cut, a statement timeout) is a 503 with `Retry-After`, not a 500: the transaction was
rolled back, nothing was written, and the next request gets a new session.
"""

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import View

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Objects and arrays nested deeper than this are refused before parsing (a registration needs 1).
MAX_JSON_DEPTH = 32
# Seconds a client waits before retrying after a 503 for a lost database session.
DATABASE_RETRY_AFTER_SECONDS = 1

logger = structlog.get_logger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: HTTPStatus,
        detail: str,
        errors: dict[str, list[str]] | None = None,
        *,
        retry_after_seconds: int | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.retry_after_seconds = retry_after_seconds


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
        if isinstance(value, str) and (problem := text_problem(value)):
            return [problem]
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


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None: PostgreSQL refuses NUL in text, and a lone
    surrogate (`\\ud800`, legal in JSON) is not Unicode and cannot be encoded as UTF-8."""
    if "\x00" in text:
        return "This field may not contain NUL characters (\\u0000)."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "This field contains an unpaired surrogate (\\ud800-\\udfff): not valid Unicode."
    return None


def _printable(name: str) -> str:
    """A field name as it can be echoed back (a hostile name may hold any code point)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def json_nesting_depth(body: bytes) -> int:
    """How deeply objects and arrays nest in `body` (JSON text), without recursion: brackets
    inside strings do not count. Linear in the body, which is bounded in size."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _read_body(request: HttpRequest) -> bytes:
    """The body, at most API_MAX_BODY_BYTES: by its Content-Length, or chunked (gunicorn
    decodes the chunks; Django alone would read nothing without a Content-Length)."""
    limit: int = settings.API_MAX_BODY_BYTES
    too_large = ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The request body must be at most {limit} bytes."
    )
    declared_length = request.META.get("CONTENT_LENGTH") or ""
    chunked = request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if chunked and not declared_length:
        try:
            body = request.META["wsgi.input"].read(limit + 1)
        except Exception as error:  # gunicorn's framing errors: a bad chunk size, cut short, …
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"The chunked request body is malformed or incomplete ({type(error).__name__}).",
            ) from None
        if len(body) > limit:
            raise too_large
        return bytes(body)
    declared_length = declared_length or "0"
    if not declared_length.isdigit() or int(declared_length) > limit:
        raise too_large
    return request.body


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
    body = _read_body(request)
    if json_nesting_depth(body) > MAX_JSON_DEPTH:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"The request body is not valid JSON: {error}"
        ) from None
    if not isinstance(payload, dict):
        raise ApiError(HTTPStatus.BAD_REQUEST, "The request body must be a JSON object.")

    errors: dict[str, list[str]] = {}
    for name in payload.keys() - fields.keys():
        errors[_printable(name)] = ["Unknown field."]
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
        except (OperationalError, InterfaceError) as error:
            # The session died under the request (its transaction rolled back): transient.
            logger.warning("database_unavailable", path=request.path, error=str(error))
            unavailable = ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "The database is unavailable at the moment; try again after Retry-After.",
                retry_after_seconds=DATABASE_RETRY_AFTER_SECONDS,
            )
            return self.problem(unavailable)
        except ApiError as error:
            return self.problem(error)

    @staticmethod
    def problem(error: ApiError) -> HttpResponse:
        response = problem_response(error.status, error.detail, error.errors)
        if error.retry_after_seconds is not None:
            response["Retry-After"] = str(error.retry_after_seconds)
        return response

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
