"""Print whether the settings started Sentry, and with which options, as one JSON object."""

import json

import django
import sentry_sdk

django.setup()
client = sentry_sdk.get_client()
options = client.options if client.is_active() else {}
state = {
    "active": client.is_active(),
    "environment": options.get("environment"),
    "release": options.get("release"),
    "send_default_pii": options.get("send_default_pii"),
}
print(json.dumps(state))  # noqa: T201
