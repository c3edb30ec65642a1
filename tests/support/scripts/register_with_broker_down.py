"""One registration through the Django test client while the broker hangs; prints
`status CODE seconds S`, then waits for the background wake-up to time out and log."""

import time

import django

django.setup()

from django.test import Client  # noqa: E402

started = time.monotonic()
response = Client(SERVER_NAME="localhost").post(
    "/api/v1/users/", {"email": "broker-down@example.com"}, content_type="application/json"
)
print("status", response.status_code, "seconds", round(time.monotonic() - started, 3))  # noqa: T201
time.sleep(8)  # let the background wake-up time out and log
