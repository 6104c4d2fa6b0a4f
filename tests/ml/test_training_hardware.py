"""The training form's default preset follows the hardware, found without importing TensorFlow."""

import pytest

from ml import hardware

pytestmark = pytest.mark.django_db


def snapshot_for_the_form(image_factory):
    from curation.services.snapshots import snapshot_create

    for _ in range(3):
        image_factory(status="labeled", label_id=1)
    return snapshot_create(name="s1", seed=0)


def test_without_a_gpu_the_form_defaults_to_tiny_and_says_why(client, settings, curator, image_factory, tmp_path):
    settings.ML_TRAINING_GPU = "auto"
    hardware.NVIDIA_GPUS, saved = tmp_path / "no-driver", hardware.NVIDIA_GPUS
    try:
        snapshot_for_the_form(image_factory)
        client.force_login(curator)
        page = client.get("/ml/runs/").content.decode()
    finally:
        hardware.NVIDIA_GPUS = saved

    assert "<option selected>tiny</option>" in page
    assert "No GPU was found on this machine" in page


def test_a_gpu_found_or_declared_makes_seed_the_default(client, settings, curator, image_factory, tmp_path):
    gpus = tmp_path / "gpus"
    (gpus / "0000:01:00.0").mkdir(parents=True)
    settings.ML_TRAINING_GPU = "auto"
    hardware.NVIDIA_GPUS, saved = gpus, hardware.NVIDIA_GPUS
    try:
        found = hardware.training_gpu()
    finally:
        hardware.NVIDIA_GPUS = saved
    settings.ML_TRAINING_GPU = "yes"
    snapshot_for_the_form(image_factory)
    client.force_login(curator)

    page = client.get("/ml/runs/").content.decode()

    assert found == (True, "This machine has 1 NVIDIA GPU.")
    assert "<option selected>seed</option>" in page and "ML_TRAINING_GPU=yes" in page
    settings.ML_TRAINING_GPU = "no"
    assert hardware.default_preset() == "tiny"
