"""gunicorn settings for the web service (docker-compose.yml and the Dockerfile run
`gunicorn -c gunicorn.conf.py config.wsgi:application`). Figures: bench/RESULTS.md, "Load".

Every value can be set from the environment (GUNICORN_*), as a deployment with more cores needs.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threads overlap the waits on PostgreSQL; processes use the cores. Each thread keeps
# one database connection open (CONN_MAX_AGE), so workers × threads must stay below
# PostgreSQL's max_connections with the Celery workers counted too.
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# With gthread this bounds only a hung worker process (no heartbeat); a single request's
# body has its own limits in core.slow_body (DERMCURATE_BODY_*), answered 408.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then, staggered, so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
# Request line and headers: gunicorn's own limits (4094 bytes, 100 fields of 8190 bytes).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# gunicorn's control socket (gunicornc) is off unless a path is given: by default every gunicorn of
# a user would share ~/.gunicorn/gunicorn.ctl.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not _control_socket
if _control_socket:
    control_socket = _control_socket
