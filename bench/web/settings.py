"""The production settings plus the publish-cost variants' app and URLs (bench only)."""

from app.config.settings import *  # noqa: F403
from app.config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.web"]
ROOT_URLCONF = "bench.web.urls"
