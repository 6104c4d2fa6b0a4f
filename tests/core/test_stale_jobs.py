"""Jobs whose worker is killed are failed by the beat task of a fresh worker, cleaned up, and retried to the end."""

import io
import random
import time
import zipfile

import pytest
from PIL import ImageDraw

from core.services.jobs import job_scratch_dir
from curation.demo_images import KAGGLE_FOLDERS, draw_lesion
from curation.models import Image, ImageSource, ImportBatch
from curation.services import storage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STALE = 5
# A fast heartbeat and a fast beat schedule, so that a stale job is found within seconds.
JOB_ENV = {"DERMCURATE_JOB_HEARTBEAT_SECONDS": "1", "DERMCURATE_JOB_STALE_SECONDS": str(STALE)}
BEAT_ENV = {**JOB_ENV, "DERMCURATE_JOB_SWEEP_SECONDS": "1"}


def large_photos_zip(count: int) -> bytes:
    """`count` distinct 1600×1200 JPEGs in class folders: a few drawn scenes, each copy marked differently."""
    rng = random.Random(7)
    scenes = [draw_lesion(index % 11, seed=index, size=(1600, 1200)) for index in range(12)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for n in range(count):
            photo = scenes[n % len(scenes)].copy()
            x, y = rng.randrange(1500), rng.randrange(1100)
            ImageDraw.Draw(photo).rectangle((x, y, x + 60, y + 60), fill=(rng.randrange(256), 40, 40))
            encoded = io.BytesIO()
            photo.save(encoded, "JPEG", quality=85)
            archive.writestr(f"{KAGGLE_FOLDERS[n % 11]}/photo-{n:04d}.jpg", encoded.getvalue())
    return buffer.getvalue()


def wait_until(condition, *, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(message)


def stored_files() -> set[str]:
    return {name for _, name in storage.content_file_names()}


def files_of_rows() -> set[str]:
    return {
        name
        for image in Image.objects.all()
        for name in (image.original.name, image.sanitized.name, image.thumbnail.name)
    }


def test_an_import_whose_worker_is_killed_is_failed_by_beat_swept_and_retried_to_completion(api, curator, start_worker):
    photos = 240
    upload = io.BytesIO(large_photos_zip(photos))
    upload.name = "clinic.zip"
    worker = start_worker(queues="default", **JOB_ENV, DERMCURATE_IMPORT_CHUNK_SIZE="10")

    response = api(curator).post("/api/v1/imports/", {"file": upload, "source": "clinic-2026"}, format="multipart")

    assert response.status_code == 202, response.content
    batch_id = response.json()["id"]
    wait_until(lambda: Image.objects.count() >= 20, timeout=180, message="the import never got going")
    scratch = job_scratch_dir(ImportBatch.objects.get(pk=batch_id))
    assert scratch.is_dir(), "the zip is unpacked in the job's scratch folder"
    worker.kill()
    killed_at = time.monotonic()
    assert ImportBatch.objects.get(pk=batch_id).status == "running"
    assert Image.objects.count() < photos, "killed in the middle"

    start_worker(queues="default", beat=True, **BEAT_ENV)
    failed = wait_until(
        lambda: ImportBatch.objects.filter(pk=batch_id, status="failed").first(),
        timeout=STALE + 60,
        message="the beat task did not fail the batch",
    )

    assert time.monotonic() - killed_at < STALE + 60
    assert "the worker stopped (no heartbeat since" in failed.error.lower()
    assert wait_until(lambda: stored_files() == files_of_rows(), timeout=30, message="orphan files stay")
    assert not scratch.exists(), "its scratch folder is gone"

    retried = api(curator).post(f"/api/v1/imports/{batch_id}/retry/")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    done = wait_until(
        lambda: ImportBatch.objects.filter(pk=batch_id, status__in=["succeeded", "failed"]).first(),
        timeout=240,
        message="the retry did not finish",
    )

    assert done.status == "succeeded", done.error
    assert Image.objects.count() == photos
    assert ImageSource.objects.filter(batch_id=batch_id).count() == photos, "every image imported once"
    detail = api(curator).get(f"/api/v1/imports/{batch_id}/").json()
    assert detail["imported"] == photos and detail["already_present"] == 0 and detail["attempts"] == 2
    assert stored_files() == files_of_rows()
