import io
import json
import time

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from rest_framework.test import APIClient

from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, ImportBatch
from tests.conftest import PASSWORD
from tests.samples import bad_and_good_inputs, lesion_jpeg, write_files, write_zip


@pytest.fixture
def imported(db, tmp_path):
    same = lesion_jpeg(seed=1)
    write_files(
        tmp_path / "set",
        {
            f"{KAGGLE_FOLDERS[1]}/a.jpg": same,
            f"{KAGGLE_FOLDERS[2]}/a_again.jpg": same,
            f"{KAGGLE_FOLDERS[2]}/b.jpg": lesion_jpeg(2, seed=2),
            f"{KAGGLE_FOLDERS[5]}/c.jpg": lesion_jpeg(5, seed=3),
        },
    )
    call_command("import_images", str(tmp_path / "set"), "--source", "kaggle", stdout=io.StringIO())
    return Image.objects.order_by("pk")


def test_images_list_has_the_fields_scripts_read(api, curator, imported):
    response = api(curator).get("/api/v1/images/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and set(body) >= {"count", "next", "results"}
    first = body["results"][0]
    assert set(first) >= {
        "id",
        "sha256",
        "width",
        "height",
        "status",
        "label",
        "exclusion_reason",
        "source_label",
        "source_paths",
        "duplicate_group",
        "image_url",
        "thumbnail_url",
        "metadata",
    }
    # The same bytes under two classes: a conflict, sent to adjudication.
    assert first["status"] == "disputed" and first["label"] is None
    assert first["source_label"] == "eczema"
    assert sorted(first["source_paths"]) == [f"{KAGGLE_FOLDERS[1]}/a.jpg", f"{KAGGLE_FOLDERS[2]}/a_again.jpg"]
    assert first["conflicting_source_labels"] is True
    assert first["image_url"] == f"http://testserver/files/images/{first['id']}/image.jpg"
    assert first["thumbnail_url"].endswith("/thumbnail.jpg")


def test_images_list_filters_by_label_status_and_source(api, curator, imported):
    client = api(curator)
    Image.objects.filter(pk=imported[2].pk).update(status="excluded", exclusion_reason="blurry")

    assert client.get("/api/v1/images/?status=excluded").json()["count"] == 1
    assert client.get("/api/v1/images/?status=pending").json()["count"] == 1
    assert client.get("/api/v1/images/?status=disputed").json()["count"] == 1
    assert client.get("/api/v1/images/?source=kaggle").json()["count"] == 3
    assert client.get("/api/v1/images/?source=other").json()["count"] == 0
    assert client.get("/api/v1/images/?label=eczema").json()["count"] == 0  # nothing labeled yet


def test_images_list_refuses_bad_filters_with_a_message(api, curator, imported):
    client = api(curator)

    bad_label = client.get("/api/v1/images/?label=rosacea")
    bad_status = client.get("/api/v1/images/?status=done")

    assert bad_label.status_code == 400 and "Unknown class code 'rosacea'" in bad_label.json()["label"][0]
    assert bad_status.status_code == 400 and "status" in bad_status.json()


def test_images_api_is_for_curators_only(api, reviewer, adjudicator, exporter, imported):
    image_id = imported[0].pk
    for user in (reviewer, adjudicator, exporter):
        assert api(user).get("/api/v1/images/").status_code == 403
        assert api(user).get(f"/api/v1/images/{image_id}/").status_code == 403
    assert api(None).get("/api/v1/images/").status_code == 401


def test_image_detail_and_unknown_id(api, curator, imported):
    assert api(curator).get(f"/api/v1/images/{imported[0].pk}/").json()["sha256"] == imported[0].sha256
    assert api(curator).get("/api/v1/images/999999/").status_code == 404


def test_image_files_are_served_to_users_with_a_role_only_with_long_cache(client, imported, reviewer, no_role_user):
    url = f"/files/images/{imported[0].pk}/image.jpg"

    assert client.get(url).status_code == 401
    client.force_login(no_role_user)
    assert client.get(url).status_code == 403
    client.force_login(reviewer)
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert "max-age=31536000" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_image_files_accept_an_api_token(imported, exporter):
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "exporter", "password": PASSWORD}).json()["token"]

    response = client.get(f"/files/images/{imported[0].pk}/thumbnail.jpg", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200


def test_originals_and_media_paths_are_never_served(client, imported, curator):
    client.force_login(curator)
    image = imported[0]

    assert client.get(f"/files/images/{image.pk}/original.jpg").status_code == 404
    for prefix in ("/media/", "/media-not-public/"):
        assert client.get(prefix + image.original.name).status_code == 404
        assert client.get(prefix + image.sanitized.name).status_code == 404


def test_curation_page_shows_counts_filters_conflicts_and_batches(client, curator, reviewer, imported):
    client.force_login(reviewer)
    assert client.get("/curation/").status_code == 403
    client.force_login(curator)

    page = client.get("/curation/").content.decode()
    conflicts = client.get("/curation/?conflicts=1").content.decode()

    assert "Counts per class" in page and "Melanocytic nevi" in page
    assert "3 images" in page
    assert "conflicting source labels" in conflicts and "1 image<" in conflicts
    assert "kaggle" in page and f"/curation/imports/{ImportBatch.objects.get().pk}/" in page


def test_batch_page_lists_rejected_files_with_reasons(client, curator, tmp_path):
    write_files(tmp_path / "set", bad_and_good_inputs())
    call_command("import_images", str(tmp_path / "set"), "--source", "clinic", stdout=io.StringIO())
    client.force_login(curator)

    page = client.get(f"/curation/imports/{ImportBatch.objects.get().pk}/").content.decode()
    status = client.get(f"/curation/imports/{ImportBatch.objects.get().pk}/status.json").json()

    assert "truncated.jpg" in page and "empty file" in page and "not an image" in page and "too many pixels" in page
    assert status["status"] == "succeeded" and status["rejected"] == 4 and status["imported"] == 6


@pytest.mark.django_db
def test_upload_page_refuses_a_file_that_is_not_a_zip(client, curator):
    client.force_login(curator)

    upload = io.BytesIO(b"not a zip")
    upload.name = "notes.zip"
    response = client.post("/curation/imports/new/", {"source": "clinic", "zip": upload})

    assert response.status_code == 400 and "notes.zip is not a zip file" in response.content.decode()
    assert ImportBatch.objects.count() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_uploaded_zip_is_imported_by_a_worker_with_progress(client, curator, start_worker, tmp_path):
    worker = start_worker(queues="default")
    archive = write_zip(
        tmp_path / "upload.zip",
        {f"{KAGGLE_FOLDERS[4]}/bcc{i}.jpg": lesion_jpeg(4, seed=i) for i in range(5)}
        | {f"{KAGGLE_FOLDERS[4]}/broken.jpg": b"junk"},
    )
    client.force_login(curator)

    with archive.open("rb") as handle:
        response = client.post("/curation/imports/new/", {"source": "clinic-upload", "trusted": "on", "zip": handle})
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/curation/imports/{batch.pk}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = client.get(f"/curation/imports/{batch.pk}/status.json").json()
        if status["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)

    assert status["status"] == "succeeded", json.dumps(status) + worker.log()
    assert (status["imported"], status["rejected"], status["progress"]) == (5, 1, 1.0)
    assert Image.objects.count() == 5
    assert batch.source.trusted
    batch.refresh_from_db()
    assert not batch.upload, "the uploaded zip is deleted once its images are stored"
    assert not default_storage.listdir("uploads")[1]
