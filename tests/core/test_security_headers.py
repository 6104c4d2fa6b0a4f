"""Security headers on pages, the API and served images."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from core.middleware import PermissionsPolicyMiddleware, permissions_policy


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/api/v1/classes/", "/healthz"])
def test_every_response_carries_referrer_nosniff_and_a_closed_permissions_policy(client, url):
    response = client.get(url)

    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    policy = dict(item.split("=") for item in response["Permissions-Policy"].split(", "))
    assert policy["camera"] == "()"
    assert policy["microphone"] == "()"
    assert policy["geolocation"] == "()"


def test_a_page_may_open_the_camera_to_itself_only():
    @permissions_policy(camera="self")
    def predict_page(request):
        return HttpResponse("ok")

    response = PermissionsPolicyMiddleware(predict_page)(RequestFactory().get("/predict/"))

    policy = dict(item.split("=") for item in response["Permissions-Policy"].split(", "))
    assert policy["camera"] == "(self)"
    assert policy["microphone"] == "()"


@pytest.mark.django_db
def test_served_images_are_inline_jpeg_with_nosniff(client, reviewer, image_factory):
    from django.core.files.base import ContentFile

    from tests.samples import lesion_jpeg

    image = image_factory()
    image.sanitized.save(f"{image.sha256}.jpg", ContentFile(lesion_jpeg(1)), save=True)

    client.force_login(reviewer)
    response = client.get(f"/files/images/{image.pk}/image.jpg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"
