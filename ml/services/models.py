"""Model versions: stored with everything needed to trust and reproduce them; one in production."""

import hashlib
import os
import subprocess
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core.services.audit import audit_record
from ml.models import ModelVersion, TrainingRun


@cache
def code_version() -> str:
    """The git commit of the running code when known (or DERMCURATE_CODE_VERSION, as Docker images set)."""
    if os.environ.get("DERMCURATE_CODE_VERSION"):
        return os.environ["DERMCURATE_CODE_VERSION"]
    try:
        git = ["git", "rev-parse", "HEAD"]  # a fixed command, no user input
        result = subprocess.run(git, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _store(path: Path, name: str) -> str:
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle, name=path.name))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version_create(*, run: TrainingRun, result) -> ModelVersion:
    """Store a finished run's model, plots and metrics as a new model version."""
    folder = f"models/run-{run.pk}"
    return ModelVersion.objects.create(
        run=run,
        snapshot=run.snapshot,
        snapshot_hash=run.snapshot.content_hash,
        config=result.config,
        class_map={str(i): code for i, code in enumerate(result.class_names)},
        artifact=_store(result.model_path, f"{folder}/model.keras"),
        artifact_sha256=_sha256(result.model_path),
        artifact_size=result.model_path.stat().st_size,
        code_version=code_version(),
        history=result.history,
        metrics=result.metrics,
        curves_plot=_store(result.curves_png, f"{folder}/training_curves.png"),
        confusion_plot=_store(result.confusion_png, f"{folder}/confusion_matrix.png"),
    )


@transaction.atomic
def model_version_promote(*, model_version: ModelVersion, actor, force: bool = False) -> ModelVersion:
    """Make a model the production model. Refused when its macro F1 (on its own test split) is below the
    current production model's, unless `force`."""
    current = ModelVersion.objects.select_for_update().filter(is_production=True).first()
    if current and current.pk == model_version.pk:
        raise ValidationError(f"Model v{model_version.pk} is already the production model.")
    new_f1, current_f1 = model_version.macro_f1, current.macro_f1 if current else None
    if current and not force and (new_f1 or 0) < (current_f1 or 0):
        raise ValidationError(
            f"Model v{model_version.pk} has macro F1 {new_f1:.3f}, below the production model v{current.pk}'s "
            f"{current_f1:.3f} (each on its own test split). Pass force to promote it anyway."
        )
    now = timezone.now()
    if current:
        ModelVersion.objects.filter(pk=current.pk).update(is_production=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_production=True, promoted_at=now)
    model_version.refresh_from_db()
    audit_record(
        actor=actor,
        action="model_promoted",
        target=f"model_version:{model_version.pk}",
        before={"production": current.pk if current else None, "macro_f1": current_f1},
        after={"production": model_version.pk, "macro_f1": new_f1, "forced": force},
    )
    return model_version
