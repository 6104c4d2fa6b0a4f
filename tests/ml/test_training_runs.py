"""Training runs on a real worker (queue `training`), with real TensorFlow on tiny images."""

import io
import json
import time

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.services.jobs import job_scratch_dir
from ml.models import ModelVersion, TrainingRun
from ml.tasks import training_run_execute_task
from tests.core.test_stale_jobs import BEAT_ENV, JOB_ENV, STALE, wait_until
from tests.ml.conftest import QUICK

pytestmark = pytest.mark.slow


def start_long_run(client, snapshot) -> int:
    """A run that would take 200 epochs: long enough to cancel or kill in the middle."""
    config = {**QUICK, "stage1_epochs": 200, "early_stopping_patience": 200}
    response = client.post(
        "/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny", "config": config}, format="json"
    )
    return response.json()["id"]


def wait_for(api, user, run_id: int, statuses: set[str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(user).get(f"/api/v1/training-runs/{run_id}/").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s: {run}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_trains_a_run_and_stores_the_model_version(api, curator, trainable_snapshot, start_worker, client):
    worker = start_worker(queues="training", pool="solo")

    response = api(curator).post(
        "/api/v1/training-runs/",
        {
            "snapshot": trainable_snapshot.pk,
            "preset": "tiny",
            "config": QUICK,
        },
        format="json",
    )
    again = api(curator).post(
        "/api/v1/training-runs/",
        {
            "snapshot": trainable_snapshot.pk,
            "preset": "tiny",
            "config": QUICK,
        },
        format="json",
    )
    run = wait_for(api, curator, response.json()["id"], {"succeeded", "failed", "cancelled"})

    assert response.status_code == 201
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"], "the running one is returned"
    assert run["status"] == "succeeded", run["error"] + worker.log()[-3000:]
    assert [e["stage"] for e in run["history"]] == [1, 2]
    assert run["progress"]["fraction"] == 1.0
    version = ModelVersion.objects.get(pk=run["model_version"])
    assert version.snapshot_hash == trainable_snapshot.content_hash
    assert version.class_map == {"0": "eczema", "1": "melanoma", "2": "melanocytic_nevi"}
    assert default_storage.size(version.artifact.name) == version.artifact_size > 0
    detail = api(curator).get(f"/api/v1/models/{version.pk}/").json()
    metrics = detail["metrics"]
    assert set(metrics) >= {
        "loss",
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "top2_accuracy",
        "per_class",
        "confusion_matrix",
    }
    assert [row["code"] for row in metrics["per_class"]] == ["eczema", "melanoma", "melanocytic_nevi"]
    assert sum(map(sum, metrics["confusion_matrix"])) == trainable_snapshot.stats["per_split"]["test"]
    assert detail["config"]["backbone"] == "B0" and detail["config"]["stage1_epochs"] == 1

    # Every test image's probabilities are stored, and the version is judged on its own and the lineage's test split.
    test_images = trainable_snapshot.stats["per_split"]["test"]
    assert version.scores.count() == test_images
    assert sorted(version.evaluations.values_list("kind", "image_count")) == [
        ("lineage_test", test_images),
        ("own_test", test_images),
    ]
    assert version.temperature > 0 and version.calibration["val_nll_after"] <= version.calibration["val_nll_before"]

    # A redelivered task finds the run finished and does nothing.
    assert training_run_execute_task.apply(args=[run["id"]]).get() is None
    assert ModelVersion.objects.count() == 1

    client.force_login(curator)
    page = client.get(f"/ml/models/{version.pk}/").content.decode()
    assert "macro F1" in page and "melanocytic_nevi" in page
    for kind in ("curves.png", "confusion.png"):
        assert client.get(f"/ml/models/{version.pk}/files/{kind}")["Content-Type"] == "image/png"
    assert f"/ml/models/{version.pk}/" in client.get(f"/ml/runs/{run['id']}/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_run_and_keeps_what_is_known(api, curator, trainable_snapshot, start_worker):
    start_worker(queues="training", pool="solo")
    run_id = start_long_run(api(curator), trainable_snapshot)
    deadline = time.monotonic() + 240
    while not TrainingRun.objects.get(pk=run_id).history and time.monotonic() < deadline:
        time.sleep(0.5)

    cancel = api(curator).post(f"/api/v1/training-runs/{run_id}/cancel/")
    run = wait_for(api, curator, run_id, {"cancelled", "succeeded", "failed"}, timeout=60)

    assert cancel.status_code == 200
    assert run["status"] == "cancelled"
    assert 1 <= len(run["history"]) < 200
    assert ModelVersion.objects.count() == 0
    again = api(curator).post(f"/api/v1/training-runs/{run_id}/cancel/")
    assert again.status_code == 400 and "already finished" in again.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_missing_image_fails_the_run_with_a_message_and_the_worker_goes_on(
    api, curator, trainable_snapshot, start_worker
):
    worker = start_worker(queues="training", pool="solo")
    item = trainable_snapshot.items.select_related("image").first()
    default_storage.delete(item.image.sanitized.name)

    run_id = (
        api(curator)
        .post(
            "/api/v1/training-runs/",
            {"snapshot": trainable_snapshot.pk, "preset": "tiny", "config": QUICK},
            format="json",
        )
        .json()["id"]
    )
    run = wait_for(api, curator, run_id, {"failed", "succeeded"})

    assert run["status"] == "failed"
    assert f"Image {item.image_id} is missing from storage" in run["error"]
    assert TrainingRun.objects.get(pk=run_id).traceback.startswith("Traceback")
    assert worker.process.poll() is None, "the worker is still up"


@pytest.mark.django_db(transaction=True)
def test_a_training_run_whose_worker_is_killed_is_failed_by_beat_not_by_a_page_view(
    api, client, curator, trainable_snapshot, start_worker
):
    trainer = start_worker(queues="training", pool="solo", **JOB_ENV)
    config = {**QUICK, "stage1_epochs": 200, "early_stopping_patience": 200}
    run_id = (
        api(curator)
        .post(
            "/api/v1/training-runs/",
            {"snapshot": trainable_snapshot.pk, "preset": "tiny", "config": config},
            format="json",
        )
        .json()["id"]
    )
    wait_until(
        lambda: TrainingRun.objects.filter(pk=run_id, progress_done__gte=1).exists(),
        timeout=240,
        message="the run never trained an epoch",
    )
    trainer.kill()
    time.sleep(STALE + 2)
    client.force_login(curator)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/ml/runs/{run_id}/").status_code == 200
        assert api(curator).get(f"/api/v1/training-runs/{run_id}/").json()["status"] == "running"
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "ml_trainingrun" in q["sql"]]

    start_worker(queues="default", beat=True, **BEAT_ENV)
    run = wait_until(
        lambda: TrainingRun.objects.filter(pk=run_id, status="failed").first(),
        timeout=60,
        message="the beat task did not fail the run",
    )
    assert "the worker stopped (no heartbeat since" in run.error.lower()
    # The sweep removes the scratch folder just after it commits the failure.
    wait_until(lambda: not job_scratch_dir(run).exists(), timeout=30, message="the scratch folder was left behind")


@pytest.mark.django_db
def test_train_command_runs_in_process_with_sync(trainable_snapshot):
    out = io.StringIO()

    call_command(
        "train",
        "--snapshot",
        str(trainable_snapshot.pk),
        "--preset",
        "tiny",
        "--config",
        json.dumps(QUICK),
        "--sync",
        "--json",
        stdout=out,
    )

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["created"] is True
    version = ModelVersion.objects.get(pk=summary["model_version"])
    assert version.run.status == "succeeded"
    assert version.history and version.metrics["per_class"]
    assert set(summary["metrics"]) >= {"accuracy", "macro_f1"}


@pytest.mark.django_db
def test_train_command_refuses_bad_input(trainable_snapshot):
    with pytest.raises(CommandError, match="There is no snapshot 999"):
        call_command("train", "--snapshot", "999")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("train", "--snapshot", str(trainable_snapshot.pk), "--config", "{nope")
    with pytest.raises(CommandError, match="backbone"):
        call_command("train", "--snapshot", str(trainable_snapshot.pk), "--config", '{"backbone": "B9"}')
    assert TrainingRun.objects.count() == 0
