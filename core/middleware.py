"""Request limits and response headers that every view gets."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpResponse, JsonResponse


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB"


def request_too_large(request, *, limit: int) -> HttpResponse:
    message = f"The request body is larger than the {_megabytes(limit)} this address accepts."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "request_too_large"}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def body_limit(request) -> int:
    """The largest body this request may send: uploads to the upload addresses may be large
    (they are streamed to a temporary file); every other body is read into memory."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data") and request.path.startswith(
        tuple(settings.DERMCURATE_UPLOAD_PATHS)
    ):
        return settings.DERMCURATE_UPLOAD_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestSizeLimitMiddleware:
    """413 from the declared Content-Length, before anything reads the body.

    First in MIDDLEWARE: the CSRF check and the session would read a form body otherwise.
    A body sent without a Content-Length (chunked) is not read by Django at all.
    """

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = body_limit(request)
        if length > limit:
            return request_too_large(request, limit=limit)
        return self.get_response(request)


def permissions_policy(**features: str) -> Callable:
    """View decorator: allow browser features for this page, e.g. permissions_policy(camera="self")."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response.permissions_policy = {name.replace("_", "-"): f"({value})" for name, value in features.items()}
            return response

        return wrapped

    return decorator


class PermissionsPolicyMiddleware:
    """Permissions-Policy on every response: every powerful browser feature off unless a page opts in."""

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = {**settings.DERMCURATE_PERMISSIONS_POLICY, **getattr(response, "permissions_policy", {})}
        response.headers.setdefault(
            "Permissions-Policy", ", ".join(f"{name}={value}" for name, value in policy.items())
        )
        return response
