"""Predictions for tele-dermatology clients: a picture in, the production model's likely classes out.

The picture is validated and sanitized exactly as an import does (curation's upload service), so a non-image, a
truncated file, a decompression bomb or a too-small picture is refused with its reason and never predicted on.
The sanitized JPEG (no EXIF, no GPS) then goes to an inference worker (Celery queue `inference`), which runs the
training pipeline's own preprocessing and the model; the web process never loads TensorFlow. Nothing is stored
unless ML_KEEP_PREDICTION_IMAGES is on.
"""

import base64
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from curation.models import LabelClass
from ml.models import ModelVersion, Prediction
from ml.selectors.models import production_model
from ml.services.evaluations import class_names_of

logger = logging.getLogger(__name__)

PREDICT_TASK = "ml.tasks.predict_task"
INFERENCE_QUEUE = "inference"


class NoProductionModel(Exception):
    """No model version is in production."""


class InferenceUnavailable(Exception):
    """No inference worker answered in time (or the broker is down)."""


@dataclass(frozen=True)
class PredictionResult:
    model_version: ModelVersion
    probabilities: list[float]  # uncalibrated, in the version's output order
    calibrated: list[float]
    response: dict  # what the API answers


def _run_in_worker(version: ModelVersion, image: bytes) -> list[float]:
    from celery import current_app

    timeout = settings.ML_PREDICT_TIMEOUT_SECONDS
    try:
        result = current_app.send_task(
            PREDICT_TASK,
            args=[version.pk, base64.b64encode(image).decode("ascii")],
            queue=INFERENCE_QUEUE,
            expires=timeout,  # a request its client gave up on is not worked on later
        )
        return result.get(timeout=timeout, propagate=True)
    except Exception as error:  # kombu/redis connection errors, celery's TimeoutError, a failed task
        logger.warning("inference failed for model v%s: %s", version.pk, error)
        raise InferenceUnavailable(
            f"The inference service did not answer within {timeout:g} s ({type(error).__name__})."
        ) from error


def _run_here(version: ModelVersion, image: bytes) -> list[float]:
    from ml.inference import probabilities_for

    return probabilities_for(version.pk, image)


def prediction_make(
    *, image: bytes, top_k: int = 3, model_version: ModelVersion | None = None, requested_by=None, local: bool = False
) -> PredictionResult:
    """Predict on one picture with the production model (or ``model_version``).

    ``local`` runs the model in this process (the ``predict`` command) instead of an inference worker.
    Raises NoProductionModel, ValidationError (a refused picture, with the reason) or InferenceUnavailable.
    """
    from curation.imaging import ImageRejected
    from curation.services.uploads import image_upload_sanitize
    from ml.training.calibrate import apply_temperature

    version = model_version or production_model()
    if version is None:
        raise NoProductionModel("no production model")
    try:
        sanitized = image_upload_sanitize(data=image)
    except ImageRejected as rejected:
        raise ValidationError(f"The image was refused: {rejected.reason}.", code="bad_image") from rejected
    probabilities = (_run_here if local else _run_in_worker)(version, sanitized.sanitized_jpeg)
    calibrated = [float(p) for p in apply_temperature([probabilities], version.temperature)[0]]
    response = _response(version, calibrated, top_k=top_k)
    if settings.ML_KEEP_PREDICTION_IMAGES:
        name = default_storage.save(f"predictions/{sanitized.sha256}.jpg", ContentFile(sanitized.sanitized_jpeg))
        Prediction.objects.create(
            model_version=version, requested_by=requested_by, sha256=sanitized.sha256, image=name, result=response
        )
    return PredictionResult(
        model_version=version, probabilities=list(probabilities), calibrated=calibrated, response=response
    )


def _response(version: ModelVersion, calibrated: list[float], *, top_k: int) -> dict:
    codes = class_names_of(version)
    classes = {label.code: label for label in LabelClass.objects.filter(code__in=codes)}
    ranked = sorted(range(len(calibrated)), key=lambda index: -calibrated[index])[:top_k]
    top = calibrated[ranked[0]]
    threshold = settings.ML_ABSTAIN_BELOW
    abstain = top < threshold
    return {
        "model_version": version.pk,
        "classes": [
            {
                "code": codes[index],
                "name": classes[codes[index]].name,
                "index": classes[codes[index]].index,
                "probability": calibrated[index],
            }
            for index in ranked
        ],
        "abstain": abstain,
        "abstain_reason": (
            f"The most likely class has probability {top:.2f}, below the threshold {threshold:g} "
            f"(ML_ABSTAIN_BELOW): refer the case to a dermatologist."
            if abstain
            else ""
        ),
    }
