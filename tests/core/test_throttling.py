"""API throttling: rates from settings, 429 with Retry-After, and no outage when its cache is down."""

import pytest

from tests.conftest import PASSWORD


@pytest.mark.django_db
def test_an_api_user_past_the_rate_gets_429_with_retry_after(api, reviewer, curator, settings):
    settings.DERMCURATE_API_RATES = {"user": "3/minute", "anon": None}
    client = api(reviewer)

    answers = [client.get("/api/v1/classes/").status_code for _ in range(4)]
    throttled = client.get("/api/v1/classes/")

    assert answers == [200, 200, 200, 429]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"].lower()
    # The count is per user: another user is not held up.
    assert api(curator).get("/api/v1/classes/").status_code == 200


@pytest.mark.django_db
def test_the_token_endpoint_is_not_throttled_but_locked_out(reviewer, settings):
    from rest_framework.test import APIClient

    settings.DERMCURATE_API_RATES = {"user": "1/minute", "anon": "1/minute"}
    client = APIClient()

    answers = [
        client.post("/api/v1/auth/token/", {"username": "reviewer1", "password": PASSWORD}, format="json").status_code
        for _ in range(3)
    ]

    assert answers == [200, 200, 200]


@pytest.mark.django_db
def test_requests_go_through_when_the_throttle_cache_is_down(api, reviewer, settings):
    settings.DERMCURATE_API_RATES = {"user": "1/minute", "anon": None}
    settings.CACHES = {
        **settings.CACHES,
        # Nothing listens on port 1.
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/1",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }

    answers = [api(reviewer).get("/api/v1/classes/").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
