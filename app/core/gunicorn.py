from datetime import timedelta
from typing import Any

import structlog
from gunicorn.glogging import Logger

from .health import PROBES

access_logger = structlog.get_logger("gunicorn.access")


class StructlogGunicornLogger(Logger):
    """gunicorn's access log as one structured `http_request` event per request."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.cfg.accesslog:
            return
        # The kubelet probes every pod every few seconds: log only the probes that fail.
        if req.path in PROBES and resp.status_code == 200:
            return
        response_headers = dict((name.lower(), value) for name, value in resp.headers)
        access_logger.info(
            "http_request",
            method=req.method,
            path=req.path,
            status=resp.status_code,
            duration_ms=round(request_time.total_seconds() * 1000, 2),
            response_bytes=getattr(resp, "sent", None),
            remote_addr=environ.get("REMOTE_ADDR"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            request_id=response_headers.get("x-request-id"),
        )
