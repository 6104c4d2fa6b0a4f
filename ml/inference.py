"""Worker side of predictions: the model loaded once per worker process, swapped when production changes.

Only Celery workers on the `inference` queue (and the `predict` command) import this module's TensorFlow code; a
web process sends the sanitized picture here and waits for the probabilities.
"""

import logging
import threading

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: dict = {}  # {"version": pk, "sha256": ..., "predictor": Predictor}


def predictor_for(version_id: int):
    """The Predictor of this model version, loading it (and dropping the previous one) on first use."""
    from ml.models import ModelVersion
    from ml.services.models import model_version_local_artifact
    from ml.training.predict import Predictor

    with _lock:
        if _loaded.get("version") != version_id:
            version = ModelVersion.objects.get(pk=version_id)
            logger.info("loading model v%s for inference", version_id)
            _loaded.clear()  # the old model goes before the new one comes: one in memory at a time
            _loaded.update(version=version_id, predictor=Predictor(model_version_local_artifact(version)))
        return _loaded["predictor"]


def loaded_version() -> int | None:
    return _loaded.get("version")


def probabilities_for(version_id: int, image: bytes) -> list[float]:
    """Uncalibrated probabilities of one encoded image, in the version's output order."""
    return [float(p) for p in predictor_for(version_id).probabilities([image])[0]]


def preload_production_model() -> int | None:
    """Load the production model ahead of the first request (run when an inference worker starts)."""
    from ml.selectors.models import production_model

    version = production_model()
    if version is None:
        return None
    predictor_for(version.pk)
    return version.pk
