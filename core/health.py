"""GET /healthz: 200 when the database and the broker answer, else 503 naming what failed."""

import os

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    with Connection(url, transport_options=options, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
        if conn.transport.driver_type == "filesystem":
            # The filesystem transport "connects" without touching the disk.
            folder = options["data_folder_in"]
            if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
                raise OSError(f"broker folder {folder} is missing or not writable")


CHECKS = {"database": _check_database, "broker": _check_broker}


@never_cache
@require_GET
def healthz(request):
    failed = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure means unhealthy
            failed[name] = f"{type(error).__name__}: {error}"
    if failed:
        return JsonResponse({"status": "unhealthy", "failed": failed}, status=503)
    return JsonResponse({"status": "ok"})
