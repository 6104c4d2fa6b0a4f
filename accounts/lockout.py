"""What a locked-out login gets (django-axes calls these through its settings).

The login form shows "Too many attempts, try again in N minutes." with status 429; the token
endpoint answers 429 JSON with the same message. Both send Retry-After.
"""

import math
from datetime import timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


def client_address(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or the address the trusted proxies in front saw."""
    proxies = settings.DERMCURATE_TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_seconds_left(request: HttpRequest, credentials: dict | None) -> int:
    """Seconds until the lockout that refused this request ends (at least 1)."""
    cool_off = get_cool_off(request) or timedelta(minutes=settings.DERMCURATE_LOGIN_LOCKOUT_MINUTES)
    attempts = AxesDatabaseHandler().get_user_attempts(request, credentials)
    latest = max((attempt.attempt_time for queryset in attempts for attempt in queryset), default=timezone.now())
    return max(1, math.ceil((latest + cool_off - timezone.now()).total_seconds()))


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many attempts, try again in {minutes} minute{'s' if minutes != 1 else ''}."


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    seconds = lockout_seconds_left(request, credentials)
    message = lockout_message(seconds)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        form = AuthenticationForm(request, initial={"username": username})
        context = {"form": form, "lockout_message": message, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response
