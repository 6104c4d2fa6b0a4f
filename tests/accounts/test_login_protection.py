"""Brute-force protection (django-axes), unlocking, password rules and who may read the API schema."""

import io
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from core.models import AuditEvent
from tests.conftest import PASSWORD, make_user

WRONG = "not the password at all"


def _form_login(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _token_login(username: str, password: str, address: str = "10.0.0.1"):
    return APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


@pytest.mark.django_db
def test_the_login_form_locks_a_username_after_the_failure_limit_and_says_when_to_come_back(client, reviewer, settings):
    assert settings.DERMCURATE_LOGIN_FAILURE_LIMIT == 5
    for _ in range(4):
        assert _form_login(client, "reviewer1", WRONG).status_code == 200  # the form again, with its error

    fifth = _form_login(client, "reviewer1", WRONG)
    right_password = _form_login(client, "reviewer1", PASSWORD)

    for response in (fifth, right_password):
        assert response.status_code == 429
        assert "Too many attempts, try again in 15 minutes." in response.content.decode()
        assert 14 * 60 < int(response["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_token_endpoint_locks_out_with_429_json_and_retry_after(reviewer):
    for _ in range(4):
        assert _token_login("reviewer1", WRONG).status_code == 401

    locked = _token_login("reviewer1", WRONG)
    still_locked = _token_login("reviewer1", PASSWORD)

    for response in (locked, still_locked):
        assert response.status_code == 429
        assert response.json() == {"detail": "Too many attempts, try again in 15 minutes.", "code": "locked_out"}
        assert int(response["Retry-After"]) > 14 * 60
    assert "token" not in still_locked.json()


@pytest.mark.django_db
def test_one_address_trying_many_usernames_is_locked_out_for_every_username(reviewer, reviewer2):
    for number in range(5):
        _token_login(f"guess{number}", WRONG, address="203.0.113.9")

    assert _token_login("reviewer2", PASSWORD, address="203.0.113.9").status_code == 429
    # Another address is not locked, and reviewer2's own username was never attacked.
    assert _token_login("reviewer2", PASSWORD, address="198.51.100.1").status_code == 200


@pytest.mark.django_db
def test_one_username_attacked_from_many_addresses_is_locked_out_everywhere(reviewer):
    for number in range(5):
        _token_login("reviewer1", WRONG, address=f"192.0.2.{number + 1}")

    assert _token_login("reviewer1", PASSWORD, address="198.51.100.7").status_code == 429


@pytest.mark.django_db
def test_failures_older_than_the_window_no_longer_count(reviewer):
    for _ in range(5):
        _token_login("reviewer1", WRONG)
    assert _token_login("reviewer1", PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))

    assert _token_login("reviewer1", PASSWORD).status_code == 200


@pytest.mark.django_db
def test_a_success_before_the_limit_resets_the_count(reviewer):
    for _ in range(4):
        _token_login("reviewer1", WRONG)
    assert _token_login("reviewer1", PASSWORD).status_code == 200

    for _ in range(4):
        _token_login("reviewer1", WRONG)
    assert _token_login("reviewer1", PASSWORD).status_code == 200


@pytest.mark.django_db
def test_unlock_user_command_lets_the_user_sign_in_again_and_is_audited(reviewer):
    for _ in range(5):
        _token_login("reviewer1", WRONG)
    assert _token_login("reviewer1", PASSWORD).status_code == 429
    out = io.StringIO()

    call_command("unlock_user", "reviewer1", stdout=out)

    assert "Unlocked user 'reviewer1'" in out.getvalue()
    assert _token_login("reviewer1", PASSWORD).status_code == 200
    event = AuditEvent.objects.get(action="login_unlocked")
    assert event.target == "user:reviewer1"
    assert event.after["records_cleared"] == 1


@pytest.mark.django_db
def test_unlock_user_by_address_and_with_nothing_to_unlock():
    for number in range(5):
        _token_login(f"guess{number}", WRONG, address="203.0.113.9")
    make_user("dr-new", "reviewer")
    assert _token_login("dr-new", PASSWORD, address="203.0.113.9").status_code == 429

    call_command("unlock_user", "--address", "203.0.113.9", stdout=io.StringIO())
    out = io.StringIO()
    call_command("unlock_user", "somebody-else", stdout=out)

    assert _token_login("dr-new", PASSWORD, address="203.0.113.9").status_code == 200
    assert "was not locked out" in out.getvalue()
    with pytest.raises(CommandError, match="username or an address"):
        call_command("unlock_user")


@pytest.mark.django_db
def test_curators_see_lockouts_in_the_admin_and_unlock_them(client, curator, reviewer):
    for _ in range(5):
        _token_login("reviewer1", WRONG)
    client.force_login(curator)

    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "reviewer1" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="reviewer1")
    response = client.post(
        "/admin/axes/accessattempt/", {"action": "unlock_usernames", "_selected_action": [attempt.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "Unlocked reviewer1" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    assert _token_login("reviewer1", PASSWORD).status_code == 200
    assert AuditEvent.objects.get(action="login_unlocked").actor == curator


@pytest.mark.django_db
def test_readers_cannot_see_or_unlock_lockouts_in_the_admin(client, reviewer):
    client.force_login(reviewer)

    assert client.get("/admin/axes/accessattempt/").status_code in (302, 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("83920174659", "entirely numeric"),
        ("dr-weakling", "too similar to the username"),
    ],
)
def test_add_user_refuses_a_weak_password_with_the_validators_message(password, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_user", "dr-weakling", "--role", "reviewer", "--password", password, stdout=io.StringIO())

    assert not get_user_model().objects.filter(username="dr-weakling").exists()


@pytest.mark.django_db
def test_the_api_schema_and_docs_need_a_role(api, no_role_user, reviewer):
    for url in ("/api/schema/", "/api/docs/"):
        assert api(no_role_user).get(url).status_code == 403, url
        assert api(reviewer).get(url).status_code == 200, url
