"""Talking to a running web role the way a client on the network would."""

import http.client
import json

# What the ingress adds in production: an allowed host, and the TLS it terminated.
SECURE = {"Host": "api.example.com", "X-Forwarded-Proto": "https"}


PASSWORD = "Slow-Enough-Hash-8841"


def send_registration(connection: http.client.HTTPConnection, email: str, password: str) -> None:
    """POST one registration on `connection`, as a client behind the ingress, asking the server
    to close the connection after its answer."""
    connection.request(
        "POST",
        "/api/v1/users/",
        body=json.dumps({"email": email, "password": password}),
        headers={**SECURE, "Content-Type": "application/json", "Connection": "close"},
    )


def register(port: int, email: str, *, password: str = PASSWORD) -> str:
    """POST one registration on a fresh connection; the outcome as a short string: the status
    code, `refused`, `broken: …` or `incomplete: …`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        send_registration(connection, email, password)
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
