"""The answer to an unhandled error: 503 with a clear message for an outage, else a plain 500.

Django calls the handler inside its `except` block, so the error is sys.exc_info(). The
pages rendered here use no context processor and no database: they must work while the
database is down.
"""

import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core.services.jobs import JobQueueUnavailable

DATABASE_DOWN = "The database is not answering. Nothing was saved by this request; try again in a minute."


def _outage(error: BaseException | None) -> tuple[str, str, int] | None:
    """(code, message, retry-after seconds) when `error` is an outage rather than a bug."""
    if isinstance(error, OperationalError | InterfaceError):
        return "database_unavailable", DATABASE_DOWN, settings.DERMCURATE_UNAVAILABLE_RETRY_AFTER_SECONDS
    if isinstance(error, JobQueueUnavailable):
        return "job_queue_unavailable", str(error), error.retry_after
    return None


def server_error(request) -> HttpResponse:
    outage = _outage(sys.exc_info()[1])
    if outage is None:
        code, message, status, retry_after = "server_error", "Something went wrong on our side.", 500, None
    else:
        (code, message, retry_after), status = outage, 503
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": code}, status=status)
    else:
        html = render_to_string("errors/error.html", {"status": status, "message": message})
        response = HttpResponse(html, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
