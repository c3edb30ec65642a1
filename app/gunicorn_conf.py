"""gunicorn settings for the web role, read from the same environment as Django.

Run as: gunicorn -c python:app.gunicorn_conf app.wsgi
"""

from app.core.gunicorn import StructlogGunicornLogger
from app.core.logging import build_logging_config, configure_structlog
from app.settings.env import env
from app.settings.logging import LOG_FORMAT, LOG_LEVEL

bind = env.list("WEB_BIND", default=["0.0.0.0:8000"])
workers = env.int("WEB_CONCURRENCY", default=2)
threads = env.int("WEB_THREADS", default=4)
worker_class = "gthread"
# A request running longer than this is killed and its worker restarted.
timeout = env.int("WEB_TIMEOUT", default=30)
# On SIGTERM, in-flight requests get this long to finish; keep it below the pod's
# terminationGracePeriodSeconds.
graceful_timeout = env.int("WEB_GRACEFUL_TIMEOUT", default=20)
keepalive = env.int("WEB_KEEPALIVE", default=5)
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = env.int("WEB_MAX_REQUESTS", default=2000)
max_requests_jitter = max_requests // 10
# Heartbeat files in memory: the root filesystem is read-only in the pod.
worker_tmp_dir = env.str("WEB_WORKER_TMP_DIR", default="/dev/shm")  # noqa: S108
accesslog = "-" if env.bool("WEB_ACCESS_LOG", default=True) else None
loglevel = LOG_LEVEL.lower()
logger_class = StructlogGunicornLogger
logconfig_dict = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
proc_name = "die-hard-web"
# gunicorn's control socket lives under $HOME, which is read-only in the pod; nothing uses it.
control_socket_disable = True
configure_structlog()
