"""Bad input: oversized bodies, deep or huge JSON, and Unicode and control characters in names."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from curation.models import ImportBatch, Snapshot, Source
from ml.models import TrainingRun
from tests.conftest import PASSWORD
from tests.samples import lesion_jpeg, write_zip


class _UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, size=-1):
        raise AssertionError("the body was read")

    readline = readinto = read


def _wsgi_post(path: str, *, content_type: str, length: int) -> tuple[str, dict, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(length),
        "wsgi.input": _UnreadableBody(),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(WSGIHandler()(environ, start_response))
    return answer["status"], answer["headers"], body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/reviews/", "application/json"),
        ("/api/v1/auth/token/", "application/json"),
        ("/accounts/login/", "application/x-www-form-urlencoded"),
        # Multipart to an address that takes no uploads gets the small limit too.
        ("/api/v1/snapshots/", "multipart/form-data; boundary=x"),
    ],
)
def test_an_oversized_body_gets_413_before_it_is_read(path, content_type, settings):
    status, _, body = _wsgi_post(path, content_type=content_type, length=settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    assert status.startswith("413")
    assert b"larger than the 2 MiB this address accepts" in body
    if path.startswith("/api/"):
        assert json.loads(body)["code"] == "request_too_large"


@pytest.mark.django_db
def test_an_upload_larger_than_the_upload_limit_gets_413_before_it_is_read(settings):
    settings.DERMCURATE_UPLOAD_MAX_BYTES = 50 * 1024 * 1024

    status, _, body = _wsgi_post("/api/v1/imports/", content_type="multipart/form-data; boundary=x", length=51 << 20)

    assert status.startswith("413")
    assert b"50 MiB" in body


@pytest.mark.django_db
def test_an_import_zip_larger_than_the_memory_limit_is_still_accepted(api, curator, settings, tmp_path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    files = {f"1. Eczema/{n}.jpg": lesion_jpeg(1, seed=n, size=(400, 300), quality=100) for n in range(8)}
    archive = write_zip(tmp_path / "big.zip", files)
    assert archive.stat().st_size > 64 * 1024

    with archive.open("rb") as handle:
        response = api(curator).post("/api/v1/imports/", {"file": handle, "source": "clinic"}, format="multipart")

    assert response.status_code == 202, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [50, 100_000])
def test_deeply_nested_json_in_a_config_field_gets_400(api, curator, depth):
    config = "[" * depth + "]" * depth
    body = '{"snapshot": 1, "preset": "tiny", "config": {"epochs": ' + config + "}}"

    response = api(curator).post("/api/v1/training-runs/", body, content_type="application/json")

    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


@pytest.mark.django_db
def test_a_huge_json_config_gets_413(api, curator):
    config = {f"key{n}": "x" * 100 for n in range(30_000)}  # about 3.5 MB

    response = api(curator).post("/api/v1/training-runs/", {"snapshot": 1, "config": config}, format="json")

    assert response.status_code == 413


@pytest.mark.django_db
def test_deeply_nested_json_typed_into_the_training_form_is_an_error_message(client, curator):
    client.force_login(curator)
    snapshot = Snapshot.objects.create(
        name="s", seed=0, ratios=[0.8, 0.1, 0.1], content_hash="0" * 64, item_count=0, created_at=timezone.now()
    )
    deep = "[" * 50 + "]" * 50  # within the field's length, past the nesting limit
    huge = "[" * 100_000 + "]" * 100_000

    answers = [client.post("/ml/runs/", {"snapshot": snapshot.pk, "config": config}) for config in (deep, huge)]

    assert [answer.status_code for answer in answers] == [400, 400]
    assert "nested deeper than 20 levels" in answers[0].content.decode()
    assert "at most 10000 characters" in answers[1].content.decode()
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_unicode_usernames_are_stored_and_control_characters_refused():
    call_command("add_user", "Dr.Ünal-皮膚", "--role", "reviewer", "--password", PASSWORD, stdout=io.StringIO())
    for bad in ("dr\x1b[31mred", "dr\x00nul", "dr\u202eevil"):
        with pytest.raises(CommandError):
            call_command("add_user", bad, "--role", "reviewer", "--password", PASSWORD, stdout=io.StringIO())

    assert list(get_user_model().objects.values_list("username", flat=True)) == ["Dr.Ünal-皮膚"]


@pytest.mark.django_db
def test_source_names_with_unicode_markup_and_control_characters_are_stored_and_shown_escaped(
    api, client, curator, tmp_path
):
    name = "Klinik Zürich — 皮膚科 🩺 <script>alert(1)</script> \u202eevil\x07"
    archive = write_zip(tmp_path / "a.zip", {"1. Eczema/a.jpg": lesion_jpeg(1)})

    with archive.open("rb") as handle:
        response = api(curator).post("/api/v1/imports/", {"file": handle, "source": name}, format="multipart")
    nul = api(curator).post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("a.zip", archive.read_bytes()), "source": "bad\x00name"},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    assert response.json()["source"] == name
    assert Source.objects.get().name == name
    client.force_login(curator)
    page = client.get(f"/curation/imports/{ImportBatch.objects.get().pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Klinik Zürich — 皮膚科 🩺" in page
    assert nul.status_code == 400
    assert "source" in nul.json()
