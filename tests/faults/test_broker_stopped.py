"""Redis (the job queue) stopped: reviewing goes on; starting an import or a training run answers
503 "job queue unavailable" and leaves no row; /healthz names the broker; a job whose send failed
anyway is sent by beat once the broker is back, and a worker runs it."""

import time

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from curation.models import ImportBatch, Snapshot
from ml.models import TrainingRun
from tests.faults.conftest import manage, production_env
from tests.samples import lesion_jpeg, write_files, write_zip
from tests.services import RedisServer, redis_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not redis_available(), reason="redis-server is not installed here"),
]

SEND_WITH_THE_BROKER_DOWN = """
from core.services.jobs import job_send
from curation.services.imports import import_batch_create
batch = import_batch_create(source_name="kept-while-down", path={path!r})
print(batch.pk, job_send(batch))
"""


def _wait(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(message)


def _trainable_snapshot() -> Snapshot:
    return Snapshot.objects.create(
        name="trainable",
        seed=0,
        ratios=[0.8, 0.1, 0.1],
        content_hash="0" * 64,
        item_count=10,
        created_at=timezone.now(),
        stats={
            "per_class": {"eczema": {"train": 3, "val": 1, "test": 1}, "melanoma": {"train": 3, "val": 1, "test": 1}},
            "per_split": {"train": 6, "val": 2, "test": 2},
        },
    )


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_stopped_reviews_go_on_and_jobs_answer_503_without_a_row(
    tmp_path, settings, start_web, start_worker, reviewer, curator, image_factory
):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        image_factory.create_batch(3)
        snapshot = _trainable_snapshot()
        reader_token, curator_token = (Token.objects.create(user=user).key for user in (reviewer, curator))
        broker = {"CELERY_BROKER_URL": redis.url(), "CELERY_RESULT_BACKEND": redis.url()}
        web = start_web(production_env(tmp_path, **broker))
        assert web.request("GET", "/healthz").status == 200
        archive = write_zip(tmp_path / "clinic.zip", {"1. Eczema/a.jpg": lesion_jpeg(1, seed=1)}).read_bytes()

        redis.stop()

        health = web.request("GET", "/healthz")
        assert health.status == 503
        assert list(health.json()["failed"]) == ["broker"]
        queue = web.request("GET", "/api/v1/review-queue/next/?count=1", token=reader_token)
        assert queue.status == 200
        image = queue.json()["items"][0]["image"]
        review = web.request("POST", "/api/v1/reviews/", token=reader_token, data={"image": image, "label": "eczema"})
        assert review.status == 201, review.body
        started = time.monotonic()
        upload = web.request(
            "POST",
            "/api/v1/imports/",
            token=curator_token,
            data={"source": "clinic"},
            files={"file": ("c.zip", archive)},
        )
        run = web.request(
            "POST", "/api/v1/training-runs/", token=curator_token, data={"snapshot": snapshot.pk, "preset": "tiny"}
        )
        for answer in (upload, run):
            assert answer.status == 503, answer.body
            assert answer.json()["code"] == "job_queue_unavailable"
            assert answer.json()["detail"].startswith("Job queue unavailable")
            assert answer.headers["Retry-After"] == "30"
        assert time.monotonic() - started < 15, "the refusal does not hang on the broker"
        assert not ImportBatch.objects.exists()
        assert not TrainingRun.objects.exists()
        assert not [path for path in settings.MEDIA_ROOT.rglob("*") if path.is_file()], "no uploaded zip left behind"

        # The broker may also go away between the check and the send: the row then stays queued.
        folder = write_files(tmp_path / "kept", {"2. Melanoma 15.75k/m.jpg": lesion_jpeg(2, seed=2)})
        output = manage(production_env(tmp_path, **broker), code=SEND_WITH_THE_BROKER_DOWN.format(path=str(folder)))
        kept_id, sent = output.strip().splitlines()[-1].split()
        assert sent == "False"
        kept = ImportBatch.objects.get(pk=kept_id)
        assert kept.status == "queued" and kept.dispatched_at is None

        redis.start()  # the same port
        start_worker(queues="default", beat=True, DERMCURATE_JOB_SWEEP_SECONDS="1", **broker)

        kept = _wait(
            lambda: ImportBatch.objects.filter(pk=kept_id, status="succeeded").first(),
            90,
            "the job kept while the broker was down never ran",
        )
        assert kept.imported == 1
        assert web.request("GET", "/healthz").status == 200
        again = web.request(
            "POST",
            "/api/v1/imports/",
            token=curator_token,
            data={"source": "clinic"},
            files={"file": ("c.zip", archive)},
        )
        assert again.status == 202, again.body
        _wait(
            lambda: ImportBatch.objects.filter(pk=again.json()["id"], status="succeeded").exists(),
            90,
            "the import made once the broker was back never ran",
        )
        run = web.request(
            "POST", "/api/v1/training-runs/", token=curator_token, data={"snapshot": snapshot.pk, "preset": "tiny"}
        )
        assert run.status == 201, run.body
        assert TrainingRun.objects.get().dispatched_at is not None
    finally:
        redis.stop()
