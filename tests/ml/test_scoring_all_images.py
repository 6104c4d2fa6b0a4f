"""Scoring every image not excluded: on promotion, on demand and for new imports; chunked, resumable after a kill."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from curation.models import ExclusionReason, Image
from ml.models import ImageScore, ScoringJob
from ml.selectors.scores import production_scores, unscored_images
from ml.services.scoring import scoring_catch_up
from ml.tasks import scoring_catch_up_task
from tests.core.test_stale_jobs import BEAT_ENV, JOB_ENV, STALE, wait_until
from tests.factories import ImageFactory
from tests.ml.conftest import MODEL_CLASS_INDEXES, store_model_version
from tests.ml.test_scoring_jobs import wait_for_job
from tests.samples import labeled_demo_snapshot, lesion_jpeg


@pytest.fixture
def snapshot(tmp_path):
    return labeled_demo_snapshot(
        tmp_path / "set", name="base", per_class=4, size=(80, 64), classes=MODEL_CLASS_INDEXES, ratios=[0.5, 0.25, 0.25]
    )


def pending_images_with_files(count: int) -> list[Image]:
    """Image rows awaiting review, each with a sanitized picture in storage (a few drawn lesions, reused)."""
    pictures = [lesion_jpeg(MODEL_CLASS_INDEXES[n % 3], seed=n, size=(80, 64)) for n in range(6)]
    images = ImageFactory.create_batch(count)
    for n, image in enumerate(images):
        default_storage.save(image.sanitized.name, ContentFile(pictures[n % len(pictures)]))
    return images


def exclude(image: Image) -> None:
    Image.objects.filter(pk=image.pk).update(status=Image.Status.EXCLUDED, exclusion_reason=ExclusionReason.BLURRY)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_promotion_scores_every_image_not_excluded_and_new_imports_are_caught_up(
    api, curator, snapshot, trained_models, start_worker
):
    version = store_model_version(trained_models["a"], snapshot=snapshot)
    extra = pending_images_with_files(6)
    exclude(extra[0])
    worker = start_worker(queues="scoring", pool="solo", ML_SCORING_CHUNK_SIZE="4")

    promoted = api(curator).post(
        f"/api/v1/models/{version.pk}/promote/", {"force": True, "reason": "first model"}, format="json"
    )
    job = ScoringJob.objects.get(model_version=version)
    done = wait_for_job(api, curator, job.pk, {"failed", "succeeded"})

    assert promoted.status_code == 200, promoted.content
    assert done["status"] == "succeeded", done["error"] + worker.log()[-2000:]
    assert done["scope"] == "all_images" and done["snapshot"] is None and done["evaluation"] is None
    expected = set(Image.objects.exclude(status=Image.Status.EXCLUDED).values_list("pk", flat=True))
    scored = list(ImageScore.objects.filter(model_version=version).values_list("image_id", flat=True))
    assert sorted(scored) == sorted(expected), "every image not excluded, once"
    assert extra[0].pk not in scored
    assert done["progress"]["done"] == len(expected)
    scores = production_scores([extra[1].pk, extra[0].pk])
    assert scores.model_version_id == version.pk and scores.classes == ["eczema", "melanoma", "melanocytic_nevi"]
    assert set(scores.calibrated) == {extra[1].pk} and abs(sum(scores.calibrated[extra[1].pk]) - 1) < 1e-6

    # Nothing new: the beat task queues nothing. An import arrives: it queues a job that scores only the new ones.
    assert scoring_catch_up_task() is None
    arrived = pending_images_with_files(3)
    caught_up = ScoringJob.objects.get(pk=scoring_catch_up_task())
    finished = wait_for_job(api, curator, caught_up.pk, {"failed", "succeeded"})

    assert finished["status"] == "succeeded", finished["error"]
    assert finished["progress"]["done"] == 3 == finished["progress"]["total"]
    assert not unscored_images(version).exists()
    assert ImageScore.objects.filter(model_version=version, image__in=arrived).count() == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scoring_job_killed_mid_way_is_failed_by_beat_and_its_retry_resumes_without_duplicates(
    api, curator, snapshot, trained_models, start_worker
):
    version = store_model_version(trained_models["a"], snapshot=snapshot, production=True)
    pending_images_with_files(400)
    total = unscored_images(version).count()
    scorer = start_worker(queues="scoring", pool="solo", ML_SCORING_CHUNK_SIZE="1", **JOB_ENV)

    response = api(curator).post("/api/v1/scoring-jobs/")
    job_id = response.json()["id"]
    wait_until(
        lambda: ImageScore.objects.filter(model_version=version).count() >= 10,
        timeout=180,
        message="the scoring never got going",
    )
    scorer.kill()
    scored_before = ImageScore.objects.filter(model_version=version).count()

    assert response.status_code == 202 and response.json()["scope"] == "all_images"
    assert ScoringJob.objects.get(pk=job_id).status == "running"
    assert scored_before < total, "killed in the middle"

    start_worker(
        queues="default,scoring", beat=True, ML_SCORING_CHUNK_SIZE="16", ML_SCORING_CATCH_UP_SECONDS="0", **BEAT_ENV
    )
    failed = wait_until(
        lambda: ScoringJob.objects.filter(pk=job_id, status="failed").first(),
        timeout=STALE + 60,
        message="the beat task did not fail the scoring job",
    )
    assert "the worker stopped" in failed.error.lower()
    assert ImageScore.objects.filter(model_version=version).count() == scored_before, "what was stored stays"

    retried = api(curator).post(f"/api/v1/scoring-jobs/{job_id}/retry/")
    done = wait_for_job(api, curator, job_id, {"failed", "succeeded"})

    assert retried.status_code == 202
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert done["progress"]["done"] == total - scored_before, "the retry scored only what was left"
    rows = ImageScore.objects.filter(model_version=version)
    assert rows.count() == total == rows.values("image").distinct().count()


@pytest.mark.django_db
def test_scoring_with_no_production_model_is_refused_with_a_message(api, curator, client, snapshot):
    response = api(curator).post("/api/v1/scoring-jobs/")
    client.force_login(curator)
    page = client.post("/ml/models/score-production/", follow=True)

    assert response.status_code == 409
    assert response.json()["code"] == "no_production_model"
    assert "no production model" in response.json()["detail"].lower()
    assert page.status_code == 400 and b"no production model" in page.content.lower()
    assert scoring_catch_up() is None and not ScoringJob.objects.exists()
    assert production_scores([1, 2]) is None


@pytest.mark.django_db
def test_scoring_all_images_on_demand_returns_the_active_job_and_the_catch_up_waits_for_new_images(
    api, curator, reviewer, client, snapshot, trained_models
):
    version = store_model_version(trained_models["a"], snapshot=snapshot, production=True)

    first = api(curator).post(f"/api/v1/models/{version.pk}/score/", {}, format="json")
    again = api(curator).post(f"/api/v1/models/{version.pk}/score/", {"snapshot": None}, format="json")
    production = api(curator).post("/api/v1/scoring-jobs/")
    listed = api(curator).get("/api/v1/scoring-jobs/").json()
    refused = api(reviewer).post("/api/v1/scoring-jobs/")

    assert first.status_code == 202 and first.json()["scope"] == "all_images"
    assert again.status_code == 200 and production.status_code == 200
    assert again.json()["id"] == production.json()["id"] == first.json()["id"]
    assert listed["count"] == 1 and listed["results"][0]["id"] == first.json()["id"]
    assert refused.status_code == 403
    assert scoring_catch_up() is None, "one is queued already"

    ScoringJob.objects.filter(pk=first.json()["id"]).update(status="failed")
    assert scoring_catch_up() is None, "a failed job's images wait for a retry, not a loop of new jobs"
    pending_images_with_files(1)
    caught_up = scoring_catch_up()
    assert caught_up is not None and caught_up.scope == "all_images" and caught_up.model_version_id == version.pk

    client.force_login(curator)
    page = client.post(f"/ml/models/{version.pk}/score/", {"snapshot": ""})
    unknown = client.post(f"/ml/models/{version.pk}/score/", {"snapshot": "999"})
    assert page.status_code == 302
    assert unknown.status_code == 400 and b"There is no snapshot 999" in unknown.content
