"""The web role's server, gunicorn (read by app/config/gunicorn.py)."""

from ..env import env

# gunicorn's listen address(es), comma-separated.
WEB_BIND = env.list("WEB_BIND", default=["0.0.0.0:8000"])
# gunicorn worker processes.
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=2)
# Threads per gunicorn worker.
WEB_THREADS = env.int("WEB_THREADS", default=4)
# Seconds before a stuck request's worker is restarted.
WEB_TIMEOUT = env.int("WEB_TIMEOUT", default=30)
# Seconds in-flight requests get to finish after SIGTERM; keep it below the pod's
# terminationGracePeriodSeconds.
WEB_GRACEFUL_TIMEOUT = env.int("WEB_GRACEFUL_TIMEOUT", default=20)
# Seconds an idle keep-alive connection stays open.
WEB_KEEPALIVE = env.int("WEB_KEEPALIVE", default=5)
# Requests after which a gunicorn worker is recycled (with 10 % jitter).
WEB_MAX_REQUESTS = env.int("WEB_MAX_REQUESTS", default=2000)
# One structured `http_request` line per request.
WEB_ACCESS_LOG = env.bool("WEB_ACCESS_LOG", default=True)
# Where gunicorn keeps worker heartbeat files (the root filesystem is read-only in the pod).
WEB_WORKER_TMP_DIR = env.str("WEB_WORKER_TMP_DIR", default="/dev/shm")  # noqa: S108
