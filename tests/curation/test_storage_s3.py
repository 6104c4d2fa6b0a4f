"""DERMCURATE_STORAGE_BACKEND=s3 on a real HTTP S3 endpoint (moto's server): imports, serving, export
and the orphan sweep store and read everything through the bucket, and nothing under MEDIA_ROOT."""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from PIL import Image as PILImage

from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, ImportBatch
from curation.services import storage
from curation.services.images import image_set_label
from curation.services.imports import storage_sweep_orphans
from curation.services.snapshots import snapshot_create
from tests.core.test_stale_jobs import wait_until
from tests.samples import exif_rotated_jpeg_with_gps, lesion_jpeg, write_zip


def files_under(folder: Path) -> list[Path]:
    return [path for path in Path(folder).rglob("*") if path.is_file()]


def row_files() -> set[str]:
    return {
        name
        for image in Image.objects.all()
        for name in (image.original.name, image.sanitized.name, image.thumbnail.name)
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_zip_uploaded_to_the_api_is_imported_served_and_exported_through_the_bucket(
    api, client, curator, reviewer, no_role_user, exporter, start_worker, s3_storage, settings, tmp_path
):
    photos = {f"{KAGGLE_FOLDERS[1]}/rotated_gps.jpg": exif_rotated_jpeg_with_gps()} | {
        f"{KAGGLE_FOLDERS[2]}/melanoma-{i}.jpg": lesion_jpeg(2, seed=i) for i in range(3)
    }
    with write_zip(tmp_path / "clinic.zip", photos).open("rb") as handle:
        response = api(curator).post(
            "/api/v1/imports/", {"file": handle, "source": "clinic", "trusted": "false"}, format="multipart"
        )
    assert response.status_code == 202, response.content
    uploads = [key for key in s3_storage.object_keys() if key.startswith("uploads/")]
    assert len(uploads) == 1 and uploads[0].endswith("-clinic.zip"), "the web process put the zip in the bucket"

    # The worker shares no folder with the web process here: what it imports comes from the bucket.
    worker = start_worker(queues="default")
    batch_id = response.json()["id"]

    def finished():
        seen = api(curator).get(f"/api/v1/imports/{batch_id}/").json()
        return seen if seen["status"] in ("succeeded", "failed") else None

    batch = wait_until(finished, timeout=90, message="the import did not finish")

    assert batch["status"] == "succeeded", batch["error"] + worker.log()[-3000:]
    assert (batch["imported"], batch["rejected"]) == (4, 0)
    keys = s3_storage.object_keys()
    assert set(keys) == row_files(), "every stored file is an image's, and the uploaded zip is gone"
    assert {key.split("/")[0] for key in keys} == {"originals", "images", "thumbnails"}
    assert len(keys) == 12
    assert not ImportBatch.objects.get(pk=batch_id).upload

    # Serving still needs a role; what is served is the stored sanitized copy, without EXIF.
    rotated = Image.objects.get(provenance__source_path__endswith="rotated_gps.jpg")
    url = f"/files/images/{rotated.pk}/image.jpg"
    assert Client().get(url).status_code == 401
    client.force_login(no_role_user)
    assert client.get(url).status_code == 403
    client.force_login(reviewer)
    served = client.get(url)
    body = b"".join(served.streaming_content)
    assert served.status_code == 200
    assert body == s3_storage.read(rotated.sanitized.name)
    assert int(served["Content-Length"]) == len(body)
    assert served["ETag"] == f'"{rotated.sha256}-image"'
    assert served["Cache-Control"] == "private, max-age=31536000, immutable"
    assert client.get(url, headers={"If-None-Match": served["ETag"]}).status_code == 304
    picture = PILImage.open(io.BytesIO(body))
    assert not picture.getexif() and "exif" not in picture.info
    assert PILImage.open(io.BytesIO(s3_storage.read(rotated.original.name))).getexif().get_ifd(0x8825), (
        "the original in the bucket keeps its metadata and is never served"
    )
    thumbnail = client.get(f"/files/images/{rotated.pk}/thumbnail.jpg")
    assert b"".join(thumbnail.streaming_content) == s3_storage.read(rotated.thumbnail.name)

    # The archive export packs the bucket's sanitized copies.
    for image in Image.objects.select_related("source_label"):
        image_set_label(image=image, label=image.source_label, actor=None, action="test")
    snapshot = snapshot_create(name="bucket", ratios=[0.5, 0.25, 0.25])
    archive = api(exporter).get(f"/api/v1/snapshots/{snapshot.pk}/archive/")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as packed:
        packed_images = {
            name.rsplit("/", 1)[1]: packed.read(name) for name in packed.namelist() if name.endswith(".jpg")
        }
    assert packed_images == {
        f"{image.sha256}.jpg": s3_storage.read(image.sanitized.name) for image in Image.objects.all()
    }

    assert files_under(settings.MEDIA_ROOT) == [], "nothing is written under MEDIA_ROOT"


@pytest.mark.django_db
def test_on_s3_the_orphan_sweep_lists_the_bucket_and_deletes_only_files_without_a_row(s3_storage, settings, tmp_path):
    photos = {f"{KAGGLE_FOLDERS[5]}/nevus-{i}.jpg": lesion_jpeg(5, seed=i) for i in range(2)}
    call_command(
        "import_images", str(write_zip(tmp_path / "two.zip", photos)), "--source", "demo", stdout=io.StringIO()
    )
    kept = row_files()
    orphan_sha = "ab" * 32
    orphans = {storage.original_name(orphan_sha, "png"), storage.sanitized_name(orphan_sha)}
    for name in orphans:
        storage.content_file_write(name=name, data=b"left by a killed import")
    # A rewrite of a leftover replaces it under the same name.
    assert storage.content_file_write(name=storage.sanitized_name(orphan_sha), data=b"again") == (
        storage.sanitized_name(orphan_sha)
    )
    assert s3_storage.read(storage.sanitized_name(orphan_sha)) == b"again"
    assert set(s3_storage.object_keys()) == kept | orphans

    assert storage_sweep_orphans() == 2

    assert set(s3_storage.object_keys()) == kept
    assert files_under(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_on_s3_stored_files_are_downloaded_once_into_a_cache_and_a_missing_one_is_named(s3_storage, tmp_path):
    names = [storage.sanitized_name(f"{i:02x}" * 32) for i in range(3)]
    for i, name in enumerate(names):
        storage.content_file_write(name=name, data=bytes([i]) * 10)
    cache = tmp_path / "cache"

    paths = storage.stored_files_local(names, cache=cache)

    assert [Path(path).read_bytes() for path in paths] == [bytes([i]) * 10 for i in range(3)]
    assert all(path.startswith(str(cache)) for path in paths)
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=names[0])
    assert storage.stored_files_local(names, cache=cache) == paths, "cached files are not fetched again"
    with pytest.raises(FileNotFoundError) as missing:
        storage.stored_files_local([names[1], storage.sanitized_name("ff" * 32)], cache=tmp_path / "other")
    assert missing.value.filename == storage.sanitized_name("ff" * 32)
    assert not list((tmp_path / "other").rglob("*.part")), "no half-written file is left"
