"""A training worker on DERMCURATE_STORAGE_BACKEND=s3 (moto's server, a real HTTP endpoint) reads the
snapshot's images from the bucket and stores the model and plots there, as a trainer on another machine would."""

from pathlib import Path

import pytest
from django.test import Client

from ml.models import ModelVersion
from tests.ml.conftest import QUICK
from tests.ml.test_training_runs import wait_for
from tests.samples import labeled_demo_snapshot

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_a_training_worker_reads_images_from_the_bucket_and_stores_the_model_there(
    api, client, curator, reviewer, start_worker, s3_storage, settings, tmp_path
):
    settings.ML_WORK_DIR = tmp_path / "ml-work"  # the worker's too (subprocess_env)
    # Imported with the command, in this process, into the bucket.
    snapshot = labeled_demo_snapshot(
        tmp_path / "set", name="bucket", per_class=6, size=(64, 64), classes=[1, 2], ratios=[0.5, 0.25, 0.25]
    )
    image_keys = [key for key in s3_storage.object_keys() if key.startswith("images/")]
    assert len(image_keys) == 12
    assert {key.split("/")[0] for key in s3_storage.object_keys()} == {"originals", "images", "thumbnails"}
    worker = start_worker(queues="training", pool="solo")

    response = api(curator).post(
        "/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny", "config": QUICK}, format="json"
    )
    run = wait_for(api, curator, response.json()["id"], {"succeeded", "failed", "cancelled"})

    assert run["status"] == "succeeded", run["error"] + worker.log()[-3000:]
    version = ModelVersion.objects.get(pk=run["model_version"])
    folder = f"models/run-{run['id']}"
    stored = {
        version.artifact.name,
        version.curves_plot.name,
        version.confusion_plot.name,
        version.reliability_plot.name,
    }
    assert stored == {
        f"{folder}/model.keras",
        f"{folder}/training_curves.png",
        f"{folder}/confusion_matrix.png",
        f"{folder}/reliability.png",
    }
    assert {key for key in s3_storage.object_keys() if key.startswith("models/")} == stored
    model_bytes = s3_storage.read(version.artifact.name)
    assert len(model_bytes) == version.artifact_size
    # The worker downloaded each snapshot image once into its cache (there is no local path).
    cache = settings.ML_WORK_DIR / "image-cache"
    cached = {str(path.relative_to(cache)) for path in files_under(settings.ML_WORK_DIR)}
    assert cached == set(image_keys)
    assert files_under(settings.MEDIA_ROOT) == [], "nothing is written under MEDIA_ROOT"

    # The model and its plots are served from the bucket to curators only.
    url = f"/ml/models/{version.pk}/files/model.keras"
    assert Client().get(url).status_code == 302, "anonymous: to the login page"
    client.force_login(reviewer)
    assert client.get(url).status_code == 403
    client.force_login(curator)
    served = client.get(url)
    assert served.status_code == 200 and b"".join(served.streaming_content) == model_bytes
    assert served["Content-Disposition"].startswith("attachment")
    plot = client.get(f"/ml/models/{version.pk}/files/curves.png")
    assert plot["Content-Type"] == "image/png"
    assert b"".join(plot.streaming_content) == s3_storage.read(version.curves_plot.name)


def files_under(folder) -> list[Path]:
    return [path for path in Path(folder).rglob("*") if path.is_file()]
