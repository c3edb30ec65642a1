"""The app's URLs, plus the registration endpoint once per publish variant."""

from django.urls import path

from app.config.urls import handler400, handler404, handler500
from app.config.urls import urlpatterns as app_urlpatterns
from app.users.views import UserRegistrationView

from .publishers import PUBLISH_VARIANTS, VARIANT_PATHS, publish_variant

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


class VariantRegistrationView(UserRegistrationView):
    """POST /api/v1/users/ exactly, with the event published the variant's way."""

    variant = "outbox"

    def post(self, request):
        token = publish_variant.set(self.variant)
        try:
            return super().post(request)
        finally:
            publish_variant.reset(token)


urlpatterns = [
    path(VARIANT_PATHS[variant].lstrip("/"), VariantRegistrationView.as_view(variant=variant))
    for variant in PUBLISH_VARIANTS
    if variant != "outbox"
]
urlpatterns += app_urlpatterns
