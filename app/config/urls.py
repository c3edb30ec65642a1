from http import HTTPStatus

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path

from app.core import health
from app.core.api import problem_response
from app.outbox.views import status
from app.users.views import UserRegistrationView

from .openapi import openapi_view

urlpatterns = [
    path("api/v1/users/", UserRegistrationView.as_view(), name="user-register"),
    path("api/v1/openapi.json", openapi_view, name="openapi"),
    path("admin/", admin.site.urls),
    path("healthz/status", status, name="health-status"),
    # Answered by HealthProbeMiddleware first; routed here too so the paths resolve.
    *(path(probe.lstrip("/"), view) for probe, view in health.PROBES.items()),
]


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(HTTPStatus.BAD_REQUEST, "The request could not be understood.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(HTTPStatus.NOT_FOUND, f"Nothing is served at {request.path}.")


def handler500(request: HttpRequest) -> JsonResponse:
    return problem_response(HTTPStatus.INTERNAL_SERVER_ERROR, "An unexpected error occurred.")
