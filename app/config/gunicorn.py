"""gunicorn settings for the web role, from the same settings blocks as Django's.

Run as: gunicorn --config python:app.config.gunicorn app.config.wsgi

Only the web, metrics and logging blocks are read here: gunicorn's master never runs the rest of
the settings (Sentry, database, cache), which its workers load with the application.

The master serves the workers' metrics on METRICS_BIND (app/core/metrics_server.py): it chooses
their shared directory here, before any worker imports prometheus_client.
"""

from typing import Any

import gunicorn.util

from app.core.gunicorn import StructlogGunicornLogger, write_problem_response
from app.core.metrics_server import (
    metrics_multiprocess_prepare,
    metrics_process_dead,
    metrics_serve,
)

from .blocks.logging import LOG_LEVEL, LOGGING
from .blocks.metrics import METRICS_ADDRESS
from .blocks.web import (
    WEB_ACCESS_LOG,
    WEB_BIND,
    WEB_CONCURRENCY,
    WEB_GRACEFUL_TIMEOUT,
    WEB_KEEPALIVE,
    WEB_MAX_REQUESTS,
    WEB_THREADS,
    WEB_TIMEOUT,
    WEB_WORKER_TMP_DIR,
)
from .logging import configure_structlog

bind = WEB_BIND
workers = WEB_CONCURRENCY
threads = WEB_THREADS
worker_class = "gthread"
# A request running longer than this is killed and its worker restarted.
timeout = WEB_TIMEOUT
graceful_timeout = WEB_GRACEFUL_TIMEOUT
keepalive = WEB_KEEPALIVE
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = WEB_MAX_REQUESTS
max_requests_jitter = max_requests // 10
# Heartbeat files in memory: the root filesystem is read-only in the pod.
worker_tmp_dir = WEB_WORKER_TMP_DIR
accesslog = "-" if WEB_ACCESS_LOG else None
loglevel = LOG_LEVEL.lower()
logger_class = StructlogGunicornLogger
logconfig_dict = LOGGING
proc_name = "die-hard-web"
# gunicorn's control socket lives under $HOME, which is read-only in the pod; nothing uses it.
control_socket_disable = True
configure_structlog()
# gunicorn answers requests it cannot parse itself; make those answers problem+json too.
gunicorn.util.write_error = write_problem_response

if METRICS_ADDRESS is not None:
    metrics_multiprocess_prepare("web")


def on_starting(server: Any) -> None:
    if METRICS_ADDRESS is not None:
        metrics_serve(METRICS_ADDRESS, role="web")


def child_exit(server: Any, worker: Any) -> None:
    metrics_process_dead(worker.pid)
