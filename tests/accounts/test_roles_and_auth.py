import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.roles import Role
from tests.conftest import PASSWORD


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_add_user_creates_a_user_with_each_role(role, client):
    out = io.StringIO()

    call_command("add_user", f"dr-{role}", "--role", role, "--password", PASSWORD, stdout=out)

    user = get_user_model().objects.get(username=f"dr-{role}")
    assert list(user.groups.values_list("name", flat=True)) == [role]
    assert user.check_password(PASSWORD)
    assert f"Created user 'dr-{role}' with role {role}" in out.getvalue()


@pytest.mark.django_db
def test_add_user_updates_an_existing_user_and_keeps_other_roles():
    call_command("add_user", "dr-x", "--role", "reviewer", "--password", PASSWORD, stdout=io.StringIO())

    call_command(
        "add_user", "dr-x", "--role", "adjudicator", "--password", "another long pass phrase", stdout=io.StringIO()
    )

    user = get_user_model().objects.get(username="dr-x")
    assert sorted(user.groups.values_list("name", flat=True)) == ["adjudicator", "reviewer"]
    assert user.check_password("another long pass phrase")


@pytest.mark.django_db
def test_add_user_with_an_unknown_role_fails_and_lists_the_roles():
    with pytest.raises(CommandError) as error:
        call_command("add_user", "dr-y", "--role", "surgeon", "--password", PASSWORD)

    message = str(error.value)
    assert "Unknown role 'surgeon'" in message
    for role in Role.values:
        assert role in message
    assert not get_user_model().objects.filter(username="dr-y").exists()


@pytest.mark.django_db
def test_add_user_json_prints_one_summary_object():
    out = io.StringIO()

    call_command("add_user", "dr-z", "--role", "curator", "--password", PASSWORD, "--json", stdout=out)

    assert out.getvalue().strip().splitlines()[-1] == '{"username": "dr-z", "role": "curator", "created": true}'


@pytest.mark.django_db
def test_classes_api_lists_the_eleven_classes_in_index_order(api, reviewer):
    response = api(reviewer).get("/api/v1/classes/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["index"] for c in results] == list(range(11))
    assert [c["code"] for c in results] == [
        "normal_skin",
        "eczema",
        "melanoma",
        "atopic_dermatitis",
        "bcc",
        "melanocytic_nevi",
        "bkl",
        "psoriasis_lichen_planus",
        "seborrheic_keratoses",
        "fungal_infections",
        "viral_infections",
    ]
    assert "1. Eczema 1677" in results[1]["aliases"]
    assert "10. Warts Molluscum and other Viral Infections - 2103" in results[10]["aliases"]


@pytest.mark.django_db
def test_token_is_issued_for_the_right_password_and_authenticates(reviewer):
    client = APIClient()

    response = client.post("/api/v1/auth/token/", {"username": "reviewer1", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    assert response.json()["roles"] == ["reviewer"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/classes/").status_code == 200


@pytest.mark.django_db
def test_token_is_refused_for_a_wrong_password_and_for_a_user_without_role(reviewer, no_role_user):
    client = APIClient()

    wrong = client.post("/api/v1/auth/token/", {"username": "reviewer1", "password": "nope"}, format="json")
    roleless = client.post("/api/v1/auth/token/", {"username": "nobody", "password": PASSWORD}, format="json")

    assert wrong.status_code == 401
    assert roleless.status_code == 403
    assert "no role" in roleless.json()["detail"]


@pytest.mark.django_db
def test_a_bad_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    assert client.get("/api/v1/classes/").status_code == 401


@pytest.mark.django_db
def test_anonymous_api_callers_get_401(client):
    for url in ("/api/v1/classes/", "/api/schema/", "/api/docs/"):
        assert client.get(url).status_code in (401, 403), url
    assert client.get("/api/v1/classes/").status_code == 401
    assert client.get("/api/v1/classes/")["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_anonymous_page_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


@pytest.mark.django_db
def test_user_without_role_gets_no_data(api, no_role_user):
    assert api(no_role_user).get("/api/v1/classes/").status_code == 403


@pytest.mark.django_db
def test_login_and_logout_pages_work(client, curator):
    assert client.get("/accounts/login/").status_code == 200

    response = client.post("/accounts/login/", {"username": "curator", "password": PASSWORD})
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert b"curator" in home.content

    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served_to_signed_in_users(api, curator):
    schema = api(curator).get("/api/schema/", HTTP_ACCEPT="application/json")

    assert schema.status_code == 200
    assert "/api/v1/classes/" in schema.json()["paths"]
    assert api(curator).get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_admin_is_for_curators_and_read_only(client, curator, reviewer, image_factory):
    image = image_factory()
    client.force_login(reviewer)
    assert client.get("/admin/").status_code == 302, "not staff: sent to the admin login"
    client.force_login(curator)

    listing = client.get("/admin/curation/image/")
    change = client.post(f"/admin/curation/image/{image.pk}/change/", {"status": "labeled"})

    assert listing.status_code == 200 and image.sha256 in listing.content.decode()
    assert change.status_code == 403
    assert client.get("/admin/core/auditevent/").status_code == 200
