"""API throttles whose rates come from settings.DERMCURATE_API_RATES, read on each request (so a
deployment, and a test, sets them), and whose counters live in the "throttle" cache.

When that cache fails (Redis down), requests go through unthrottled: reviewing must not stop
because a counter cannot be read.
"""

import logging

from django.conf import settings
from django.core.cache import caches
from rest_framework import throttling

logger = logging.getLogger(__name__)


class _SettingsRateMixin:
    def __init__(self):
        # DRF reads the rate in __init__ from a dict bound at import; read ours instead.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    @property
    def cache(self):
        return caches["throttle"]

    def get_rate(self) -> str | None:
        return settings.DERMCURATE_API_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache's errors vary by backend (redis, socket)
            logger.warning("throttle cache unavailable; request let through", exc_info=True)
            return True


class UserRateThrottle(_SettingsRateMixin, throttling.UserRateThrottle):
    """Per signed-in user (anonymous callers: per address)."""


class AnonRateThrottle(_SettingsRateMixin, throttling.AnonRateThrottle):
    """Per address, for the few API endpoints open to anonymous callers."""
