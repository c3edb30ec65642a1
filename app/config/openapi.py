"""The API's OpenAPI 3.1 document, built from the same field declarations the views enforce."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from app.users.views import REGISTRATION_FIELDS

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "die-hard API",
            "version": settings.APP_VERSION,
            "description": "User registration; each registration publishes a user_created event.",
        },
        "paths": {
            "/api/v1/users/": {
                "post": {
                    "operationId": "users_register",
                    "summary": "Register a user",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/UserRegistration"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The user was registered.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}
                                }
                            },
                        },
                        "400": _problem_response("Invalid JSON or invalid fields (see `errors`)."),
                        "405": _problem_response("Only POST is allowed."),
                        "409": _problem_response("The email is already registered."),
                        "413": _problem_response("The body is larger than the limit."),
                        "415": _problem_response("The body is not JSON."),
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "UserRegistration": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        name for name, field in REGISTRATION_FIELDS.items() if field.required
                    ],
                    "properties": {
                        name: field.json_schema() for name, field in REGISTRATION_FIELDS.items()
                    },
                },
                "User": {
                    "type": "object",
                    "required": ["id", "email", "first_name", "last_name", "date_joined"],
                    "properties": {
                        "id": {"type": "integer"},
                        "email": {"type": "string", "format": "email"},
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
            }
        },
    }


@require_GET
def openapi_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())
