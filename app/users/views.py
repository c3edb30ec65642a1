from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from app.core.api import ApiError, Field, JsonApiView, parse_json_object
from app.core.ratelimit import rate_limit_hit

from .hashing import PasswordHashingBusy
from .models import User
from .services import UserEmailAlreadyRegistered, user_register

REGISTRATION_FIELDS = {
    "email": Field(
        "string", "The login; unique regardless of letter case.", required=True, max_length=254
    ),
    "password": Field(
        "string",
        "Optional; checked by the password validators. Without it the account cannot log in.",
        nullable=True,
        max_length=4096,
    ),
    "first_name": Field("string", "Given name.", max_length=150),
    "last_name": Field("string", "Family name.", max_length=150),
}


def user_public_fields(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined": user.date_joined.isoformat(),
    }


# A JSON API authenticated by no cookie: CSRF protection guards cookie-based sessions only.
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class UserRegistrationView(JsonApiView):
    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest) -> JsonResponse:
        limited = rate_limit_hit(
            request,
            group="registration",
            rates={
                "client": settings.REGISTRATION_RATE_PER_CLIENT,
                "global": settings.REGISTRATION_RATE_GLOBAL,
            },
        )
        if limited is not None:
            raise ApiError(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"Too many registrations ({limited.scope} limit); try again later.",
                retry_after_seconds=limited.retry_after_seconds,
            )
        payload = parse_json_object(request, REGISTRATION_FIELDS)
        try:
            user = user_register(**payload)
        except ValidationError as error:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "The request body has invalid fields.", error.message_dict
            ) from None
        except UserEmailAlreadyRegistered:
            raise ApiError(
                HTTPStatus.CONFLICT,
                "A user with this email is already registered.",
                {"email": ["A user with this email is already registered."]},
            ) from None
        except PasswordHashingBusy:
            raise ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "Too many registrations at once here; try again in a moment.",
                retry_after_seconds=1,
            ) from None
        return JsonResponse(user_public_fields(user), status=HTTPStatus.CREATED)
