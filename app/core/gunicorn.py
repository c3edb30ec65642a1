import json
import uuid
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import structlog
from gunicorn import util
from gunicorn.glogging import Logger

from .health import PROBES

access_logger = structlog.get_logger("gunicorn.access")


class StructlogGunicornLogger(Logger):
    """gunicorn's access log as one structured `http_request` event per request."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.cfg.accesslog:
            return
        # gunicorn's own refusals (a malformed request) set only `status`, not `status_code`.
        status = getattr(resp, "status_code", None) or int(str(resp.status).split(" ", 1)[0])
        # The kubelet probes every pod every few seconds: log only the probes that fail.
        if req.path in PROBES and status == 200:
            return
        response_headers = dict((name.lower(), value) for name, value in resp.headers)
        access_logger.info(
            "http_request",
            method=req.method,
            path=req.path,
            status=status,
            duration_ms=round(request_time.total_seconds() * 1000, 2),
            response_bytes=getattr(resp, "sent", None),
            remote_addr=environ.get("REMOTE_ADDR"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            request_id=response_headers.get("x-request-id"),
        )


def write_problem_response(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's own refusals — malformed framing, oversized or too many headers, an
    unsupported `Expect` or transfer coding — as problem+json like every other error of the API,
    in place of its HTML page (installed by app/config/gunicorn.py).

    An unknown transfer coding is 501 in gunicorn (RFC 9112 says it SHOULD be); die-hard answers
    every malformed request with a 4xx, so it is 400 here.
    """
    if status == HTTPStatus.NOT_IMPLEMENTED:
        status = HTTPStatus.BAD_REQUEST
    phrase = HTTPStatus(status).phrase
    body = json.dumps(
        {"type": "about:blank", "title": phrase, "status": status, "detail": message or reason}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        # Like every answer of the API (the request never reached RequestIdMiddleware).
        f"X-Request-ID: {uuid.uuid4().hex}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
