"""Scoring a version on another snapshot's test split, as a job on the `scoring` queue, with a real worker."""

import time

import pytest
from django.core.files.storage import default_storage

from core.services.jobs import jobs_fail_stale
from curation.selectors.snapshots import lineage_test_labels, snapshot_test_labels
from ml.models import ImageScore, ModelEvaluation, ScoringJob
from tests.ml.conftest import MODEL_CLASS_INDEXES, store_model_version
from tests.samples import labeled_demo_snapshot

pytestmark = pytest.mark.slow


def wait_for_job(api, user, job_id: int, statuses: set[str], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api(user).get(f"/api/v1/scoring-jobs/{job_id}/").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.5)
    raise AssertionError(f"scoring job {job_id} still {job['status']} after {timeout}s")


@pytest.fixture
def snapshot(tmp_path):
    return labeled_demo_snapshot(
        tmp_path / "set",
        name="older",
        per_class=8,
        size=(80, 64),
        classes=MODEL_CLASS_INDEXES,
        ratios=[0.5, 0.25, 0.25],
    )


@pytest.mark.django_db(transaction=True)
def test_a_scoring_job_scores_a_version_on_a_snapshots_test_split_and_retry_resumes(
    api, curator, snapshot, trained_models, start_worker
):
    version = store_model_version(trained_models["a"], snapshot=snapshot)
    test_images = snapshot_test_labels(snapshot)
    # One image's file is gone: the job fails with a message, after scoring what came before it.
    missing = max(test_images)
    from curation.models import Image

    name = Image.objects.get(pk=missing).sanitized.name
    saved = default_storage.open(name, "rb").read()
    default_storage.delete(name)
    worker = start_worker(queues="scoring", pool="solo")

    response = api(curator).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": snapshot.pk}, format="json")
    again = api(curator).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": snapshot.pk}, format="json")
    failed = wait_for_job(api, curator, response.json()["id"], {"failed", "succeeded"})

    assert response.status_code == 202 and again.status_code in (200, 202)
    assert failed["status"] == "failed", worker.log()[-2000:]
    assert "missing from storage" in failed["error"]
    default_storage.save(name, __import__("io").BytesIO(saved))
    retried = api(curator).post(f"/api/v1/scoring-jobs/{failed['id']}/retry/")
    done = wait_for_job(api, curator, failed["id"], {"failed", "succeeded"})

    assert retried.status_code == 202
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert ImageScore.objects.filter(model_version=version).count() == len(test_images), "no duplicates"
    evaluation = ModelEvaluation.objects.get(pk=done["evaluation"]["id"])
    assert evaluation.kind == "snapshot_test" and evaluation.image_count == len(test_images)
    assert set(evaluation.metrics) >= {"macro_f1", "per_class", "confusion_matrix"}
    score = ImageScore.objects.filter(model_version=version).first()
    assert abs(sum(score.calibrated) - 1) < 1e-6 and score.top_index == score.probabilities.index(
        max(score.probabilities)
    )


@pytest.mark.django_db
def test_a_queued_scoring_job_cancels_at_once_and_a_stale_one_is_failed_by_the_sweep(
    api, curator, snapshot, trained_models
):
    from datetime import timedelta

    from django.utils import timezone

    version = store_model_version(trained_models["a"], snapshot=snapshot)
    job_id = (
        api(curator).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": snapshot.pk}, format="json").json()["id"]
    )

    cancelled = api(curator).post(f"/api/v1/scoring-jobs/{job_id}/cancel/")

    assert cancelled.json()["status"] == "cancelled"
    stale = ScoringJob.objects.create(
        model_version=version,
        snapshot=snapshot,
        status="running",
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert stale.pk in [job.pk for job in jobs_fail_stale() if isinstance(job, ScoringJob)]
    assert ScoringJob.objects.get(pk=stale.pk).status == "failed"


@pytest.mark.django_db
def test_scoring_requests_are_refused_for_a_snapshot_without_known_classes_or_an_unknown_one(
    api, curator, snapshot, trained_models, tmp_path
):
    version = store_model_version(trained_models["a"], snapshot=snapshot)

    unknown = api(curator).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": 999}, format="json")
    reviewer_like = api(None).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": snapshot.pk}, format="json")

    assert unknown.status_code == 400 and "no snapshot 999" in str(unknown.json())
    assert reviewer_like.status_code == 401


@pytest.mark.django_db
def test_the_lineage_test_split_keeps_older_test_images_with_their_newest_labels(snapshot, tmp_path):
    from curation.services.snapshots import snapshot_create

    older = snapshot_test_labels(snapshot)
    newer = snapshot_create(name="newer")

    lineage = lineage_test_labels()

    assert set(older) <= set(lineage), "a test image stays a test image"
    assert set(snapshot_test_labels(newer)) <= set(lineage)
