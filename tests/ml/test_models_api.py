"""Requests, permissions, promotion and comparison (no training needed: model rows are made directly)."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from curation.models import LabelClass, Snapshot
from curation.services.snapshots import snapshot_create
from ml.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(image_factory):
    for code in ("eczema", "melanoma"):
        image_factory.create_batch(10, status="labeled", label=LabelClass.objects.get(code=code))
    return snapshot_create(name="s", ratios=[0.6, 0.2, 0.2])


def model_version(snapshot: Snapshot, macro_f1: float, **per_class_f1: float) -> ModelVersion:
    run = TrainingRun.objects.create(
        snapshot=snapshot, preset="tiny", config={}, config_hash=f"h{macro_f1}", status="succeeded"
    )
    artifact = default_storage.save(f"models/run-{run.pk}/model.keras", ContentFile(b"model"))
    return ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config={},
        class_map={"0": "eczema"},
        artifact=artifact,
        artifact_sha256="0" * 64,
        artifact_size=5,
        metrics={
            "macro_f1": macro_f1,
            "accuracy": macro_f1,
            "balanced_accuracy": macro_f1,
            "top2_accuracy": 1.0,
            "loss": 1 - macro_f1,
            "per_class": [
                {"code": c, "precision": f, "recall": f, "f1": f, "support": 4} for c, f in per_class_f1.items()
            ],
        },
    )


def test_a_reader_cannot_start_training_or_promote(api, reviewer, adjudicator, snapshot):
    version = model_version(snapshot, 0.5)
    for user in (reviewer, adjudicator):
        assert api(user).post("/api/v1/training-runs/", {"snapshot": snapshot.pk}, format="json").status_code == 403
        assert api(user).post(f"/api/v1/models/{version.pk}/promote/").status_code == 403
        assert api(user).get("/api/v1/models/").status_code == 403
    assert api(None).get("/api/v1/training-runs/").status_code == 401
    assert TrainingRun.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"preset": "huge"}, "Unknown preset 'huge'"),
        ({"preset": "tiny", "config": {"learning_rate_typo": 1}}, "learning_rate_typo"),
        ({"preset": "tiny", "config": {"stage1_epochs": -1}}, "stage1_epochs"),
    ],
)
def test_bad_training_requests_are_refused_with_a_message(api, curator, snapshot, payload, message):
    response = api(curator).post("/api/v1/training-runs/", {"snapshot": snapshot.pk, **payload}, format="json")

    assert response.status_code == 400
    assert message in str(response.json())
    assert TrainingRun.objects.count() == 0


def test_a_snapshot_without_test_images_or_unknown_cannot_be_trained(api, curator, image_factory):
    image_factory.create_batch(3, status="labeled", label=LabelClass.objects.get(code="eczema"))
    tiny = snapshot_create(name="one-class", ratios=[1.0, 0.0, 0.0])

    refused = api(curator).post("/api/v1/training-runs/", {"snapshot": tiny.pk, "preset": "tiny"}, format="json")
    unknown = api(curator).post("/api/v1/training-runs/", {"snapshot": 999, "preset": "tiny"}, format="json")

    assert refused.status_code == 400
    assert "at least two classes" in refused.json()["detail"] and "val split" in refused.json()["detail"]
    assert unknown.status_code == 400 and "no snapshot 999" in str(unknown.json())


def test_the_same_request_while_queued_returns_the_queued_run(api, curator, snapshot):
    first = api(curator).post("/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny"}, format="json")
    second = api(curator).post("/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny"}, format="json")
    other = api(curator).post(
        "/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny", "config": {"seed": 7}}, format="json"
    )

    assert (first.status_code, second.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == second.json()["id"] != other.json()["id"]
    assert first.json()["status"] == "queued"


def test_cancelling_a_queued_run_cancels_it_at_once(api, curator, snapshot):
    run_id = (
        api(curator)
        .post("/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny"}, format="json")
        .json()["id"]
    )

    response = api(curator).post(f"/api/v1/training-runs/{run_id}/cancel/")

    assert response.json()["status"] == "cancelled"


def test_models_api_lists_versions_with_the_fields_scripts_read(api, curator, snapshot):
    version = model_version(snapshot, 0.5, eczema=0.5)

    body = api(curator).get("/api/v1/models/").json()

    assert body["count"] == 1
    row = body["results"][0]
    assert set(row) >= {"id", "run", "snapshot", "snapshot_hash", "config", "class_map", "is_production", "metrics"}
    assert row["id"] == version.pk and row["snapshot_hash"] == snapshot.content_hash


def test_compare_page_shows_metric_and_per_class_differences(client, curator, snapshot):
    first = model_version(snapshot, 0.5, eczema=0.4, melanoma=0.6)
    second = model_version(snapshot, 0.7, eczema=0.8, melanoma=0.6)
    client.force_login(curator)

    page = client.get(f"/ml/models/compare/?a={first.pk}&b={second.pk}").content.decode()

    assert "macro_f1" in page and "0.200" in page, "macro F1 up by 0.2"
    assert "0.400" in page, "eczema F1 up by 0.4"


def test_ml_pages_are_for_curators(client, curator, reviewer, snapshot):
    version = model_version(snapshot, 0.5)
    client.force_login(reviewer)
    for url in ("/ml/runs/", "/ml/models/", f"/ml/models/{version.pk}/"):
        assert client.get(url).status_code == 403
    client.force_login(curator)
    assert client.get("/ml/runs/").status_code == 200
    started = client.post("/ml/runs/", {"snapshot": snapshot.pk, "preset": "tiny"})
    assert started.status_code == 302 and TrainingRun.objects.filter(status="queued").count() == 1
