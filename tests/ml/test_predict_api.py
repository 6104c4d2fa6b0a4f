"""POST /api/v1/predict/: bad pictures refused with their reason, a real inference worker serving a promoted tiny
model, the training pipeline's probabilities, and the `predict` command."""

import io
import json
import time

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from curation.models import LabelClass
from ml.models import Prediction
from ml.services.predictions import prediction_make
from tests.ml.conftest import MODEL_CLASS_INDEXES, store_model_version
from tests.samples import EXIF_ORIENTATION, GPS_IFD, encode, lesion_jpeg, png_claiming_size, tall_left_red_image


def upload(data: bytes, name: str = "photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def snapshot(image_factory):
    from curation.services.snapshots import snapshot_create

    for index in MODEL_CLASS_INDEXES:
        image_factory.create_batch(4, status="labeled", label=LabelClass.objects.get(index=index))
    return snapshot_create(name="s", ratios=[0.5, 0.25, 0.25])


@pytest.fixture
def production(trained_models, snapshot):
    return store_model_version(trained_models["a"], snapshot=snapshot, production=True)


def rotated_photo_with_gps() -> bytes:
    """A landscape photo whose EXIF says "rotate 90°" and which carries GPS coordinates."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return encode(tall_left_red_image(size=(160, 96)), "JPEG", exif=exif.tobytes(), quality=95)


def photo() -> bytes:
    return lesion_jpeg(class_index=2, seed=3, size=(120, 96))


BAD_PICTURES = {
    "not an image": (b"%PDF-1.4 these are my notes, not a picture\n" * 20, "not an image"),
    "truncated": (lesion_jpeg(seed=1, size=(160, 120))[:-600], "truncated or corrupt"),
    "bomb": (png_claiming_size(60000, 60000), "too many pixels"),
    "too small": (encode(Image.new("RGB", (40, 30), (200, 120, 100)), "PNG"), "too small: 40×30 px"),
    "empty": (b"", "empty file"),
    "blank": (encode(Image.new("RGB", (320, 240), (12, 12, 12)), "JPEG"), "blank: almost no variation"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_PICTURES))
def test_a_bad_picture_is_refused_with_its_reason_and_never_predicted(api, predictor, production, case, settings):
    data, reason = BAD_PICTURES[case]
    settings.ML_KEEP_PREDICTION_IMAGES = True

    response = api(predictor).post("/api/v1/predict/", {"image": upload(data)}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_image"
    assert reason in response.json()["detail"]
    assert Prediction.objects.count() == 0


@pytest.mark.django_db
def test_a_request_without_an_image_or_with_a_bad_top_k_names_the_field(api, predictor, production):
    missing = api(predictor).post("/api/v1/predict/", {}, format="multipart")
    bad_k = api(predictor).post("/api/v1/predict/", {"image": upload(photo()), "top_k": 0}, format="multipart")
    not_a_number = api(predictor).post(
        "/api/v1/predict/", {"image": upload(photo()), "top_k": "three"}, format="multipart"
    )

    assert missing.status_code == 400 and "image" in missing.json()
    assert bad_k.status_code == 400 and "top_k" in bad_k.json()
    assert not_a_number.status_code == 400 and "top_k" in not_a_number.json()


@pytest.mark.django_db
def test_a_picture_over_the_size_limit_is_refused(api, predictor, production, settings):
    settings.ML_PREDICT_MAX_BYTES = 1000

    response = api(predictor).post("/api/v1/predict/", {"image": upload(photo())}, format="multipart")

    assert response.status_code == 400 and "limit is 1000" in str(response.json())


@pytest.mark.django_db
def test_without_a_production_model_the_answer_is_503(api, predictor, trained_models, snapshot):
    store_model_version(trained_models["a"], snapshot=snapshot, production=False)

    response = api(predictor).post("/api/v1/predict/", {"image": upload(photo())}, format="multipart")

    assert response.status_code == 503
    assert response.json() == {"detail": "no production model", "code": "no_production_model"}


@pytest.mark.django_db
def test_only_predictors_and_curators_may_predict(api, reviewer, adjudicator, exporter, production):
    for user in (reviewer, adjudicator, exporter):
        assert api(user).post("/api/v1/predict/", {"image": upload(photo())}, format="multipart").status_code == 403
    assert api(None).post("/api/v1/predict/", {"image": upload(photo())}, format="multipart").status_code == 401


@pytest.mark.django_db
def test_a_predictor_reaches_nothing_but_the_predict_api(api, predictor, production):
    for url in ("/api/v1/images/", "/api/v1/models/", "/api/v1/snapshots/", "/api/v1/training-runs/"):
        assert api(predictor).get(url).status_code == 403, url


@pytest.mark.django_db
def test_predictions_answer_calibrated_top_k_and_abstain_below_the_threshold(production, settings):
    settings.ML_ABSTAIN_BELOW = 1.01  # no probability reaches it

    result = prediction_make(image=photo(), top_k=2, local=True)

    body = result.response
    assert body["model_version"] == production.pk
    assert [set(row) for row in body["classes"]] == [{"code", "name", "index", "probability"}] * 2
    assert body["classes"][0]["probability"] >= body["classes"][1]["probability"]
    names = dict(LabelClass.objects.values_list("code", "name"))
    assert all(row["name"] == names[row["code"]] for row in body["classes"])
    assert body["abstain"] is True and "below the threshold 1.01" in body["abstain_reason"]
    from ml.training.calibrate import apply_temperature

    np.testing.assert_allclose(result.calibrated, apply_temperature([result.probabilities], production.temperature)[0])
    settings.ML_ABSTAIN_BELOW = 0.0
    assert prediction_make(image=photo(), local=True).response["abstain_reason"] == ""


@pytest.mark.django_db
def test_nothing_is_stored_unless_asked_and_what_is_kept_has_no_exif(production, settings):
    prediction_make(image=rotated_photo_with_gps(), local=True)
    assert Prediction.objects.count() == 0

    settings.ML_KEEP_PREDICTION_IMAGES = True
    prediction_make(image=rotated_photo_with_gps(), local=True)

    kept = Prediction.objects.get()
    with kept.image.open("rb") as handle:
        stored = Image.open(io.BytesIO(handle.read()))
        assert not stored.getexif(), "no EXIF (and so no GPS) in the kept picture"
        assert stored.size == (96, 160), "turned upright as the EXIF said, then stripped"


@pytest.mark.django_db(transaction=True)
def test_a_real_inference_worker_serves_the_promoted_model_as_the_library_predicts(
    api, predictor, curator, trained_models, snapshot, start_worker
):
    import keras

    from ml.training.calibrate import apply_temperature
    from ml.training.data import prepare_image

    first = store_model_version(trained_models["a"], snapshot=snapshot, production=True)
    worker = start_worker(queues="inference", pool="solo")
    data = photo()

    response = api(predictor).post("/api/v1/predict/", {"image": upload(data), "top_k": 3}, format="multipart")
    through_worker = prediction_make(image=data, top_k=3)

    assert response.status_code == 200, response.content + worker.log()[-3000:].encode()
    model = keras.models.load_model(trained_models["a"].model_path)
    library = model.predict(prepare_image(data, 32)[None], verbose=0)[0]
    # Before calibration: the worker's probabilities are the library's on the same file.
    np.testing.assert_allclose(through_worker.probabilities, library, atol=1e-5, rtol=0)
    served = {row["index"]: row["probability"] for row in response.json()["classes"]}
    expected = apply_temperature([library], first.temperature)[0]
    for position, index in enumerate(MODEL_CLASS_INDEXES):
        assert served[index] == pytest.approx(expected[position], abs=1e-5)
    assert response.json()["model_version"] == first.pk

    # Production changes: the worker swaps models on the next request.
    from ml.models import ModelVersion

    second = store_model_version(trained_models["b"], snapshot=snapshot)
    ModelVersion.objects.filter(pk=first.pk).update(is_production=False)
    ModelVersion.objects.filter(pk=second.pk).update(is_production=True)
    swapped = prediction_make(image=data)
    other = keras.models.load_model(trained_models["b"].model_path).predict(prepare_image(data, 32)[None], verbose=0)
    assert swapped.model_version.pk == second.pk
    np.testing.assert_allclose(swapped.probabilities, other[0], atol=1e-5, rtol=0)
    assert "loading model v" in worker.log()


@pytest.mark.django_db(transaction=True)
def test_with_no_inference_worker_the_answer_is_503_in_bounded_time(api, predictor, production, settings):
    settings.ML_PREDICT_TIMEOUT_SECONDS = 2
    started = time.monotonic()

    response = api(predictor).post("/api/v1/predict/", {"image": upload(photo())}, format="multipart")

    assert response.status_code == 503 and response.json()["code"] == "inference_unavailable"
    assert time.monotonic() - started < 30


@pytest.mark.django_db
def test_predict_command_prints_each_pictures_classes_and_refuses_bad_ones(tmp_path, production):
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(photo())
    bad.write_bytes(b"not a picture at all" * 10)
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 of 2 image"):
        call_command("predict", str(good), str(bad), "--model", str(production.pk), "--json", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    first, second = summary["predictions"]
    assert first["model_version"] == production.pk and len(first["classes"]) == 3
    assert "not an image" in second["error"]
    with pytest.raises(CommandError, match="no model version 999"):
        call_command("predict", str(good), "--model", "999")
