"""Talking to a running web role the way a client on the network would."""

import http.client
import json

# What the ingress adds in production: an allowed host, and the TLS it terminated.
SECURE = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}


def register(port: int, email: str, *, password: str = "Slow-Enough-Hash-8841") -> str:  # noqa: S107
    """POST one registration on a fresh connection; the outcome as a short string: the status
    code, `refused`, `broken: …` or `incomplete: …`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"email": email, "password": password})
    try:
        connection.request(
            "POST",
            "/api/v1/users/",
            body=body,
            headers={**SECURE, "Content-Type": "application/json", "Connection": "close"},
        )
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"  # the server is gone or going: the request was never sent
    try:
        response = connection.getresponse()
        payload = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError) as error:
        return f"broken: {error!r}"
    finally:
        connection.close()
    if response.status != 201:
        return str(response.status)
    return "201" if payload.get("email") == email else f"incomplete: {payload}"
