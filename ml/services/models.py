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


def file_sha256(path: Path) -> str:
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
        artifact_sha256=file_sha256(result.model_path),
        artifact_size=result.model_path.stat().st_size,
        code_version=code_version(),
        history=result.history,
        metrics=result.metrics,
        curves_plot=_store(result.curves_png, f"{folder}/training_curves.png"),
        confusion_plot=_store(result.confusion_png, f"{folder}/confusion_matrix.png"),
        reliability_plot=_store(result.reliability_png, f"{folder}/reliability.png") if result.reliability_png else "",
        temperature=result.temperature,
        calibration=result.calibration or {},
    )


def promotion_refusals(*, model_version: ModelVersion, current: ModelVersion | None) -> list[str]:
    """Why this version should not become the production model; empty when nothing speaks against it."""
    from ml.selectors.evaluations import shared_evaluation

    refusals = []
    macro_f1 = model_version.macro_f1 or 0.0
    minimum_f1 = settings.ML_PROMOTION_MIN_MACRO_F1
    if macro_f1 < minimum_f1:
        refusals.append(
            f"Model v{model_version.pk} has macro F1 {macro_f1:.3f} on its test split, below the minimum "
            f"{minimum_f1:.3f} (ML_PROMOTION_MIN_MACRO_F1)."
        )
    minimum_images = settings.ML_PROMOTION_MIN_TEST_PER_CLASS
    support = {row["code"]: row.get("support", 0) for row in model_version.metrics.get("per_class", [])}
    thin = [
        (code, support.get(code, 0))
        for code in model_version.class_map.values()
        if support.get(code, 0) < minimum_images
    ]
    if thin:
        listed = ", ".join(f"{code} ({count})" for code, count in thin)
        refusals.append(
            f"Its test split holds fewer than {minimum_images} images (ML_PROMOTION_MIN_TEST_PER_CLASS) of: {listed}; "
            f"its scores there say little."
        )
    if current is not None:
        shared = shared_evaluation(current, model_version)
        if not shared.image_count:
            refusals.append(
                f"It shares no scored test image with the production model v{current.pk}, so the two cannot be "
                f"compared; score both on the newest snapshot's test split first."
            )
        else:
            mine, theirs = shared.second_metrics["macro_f1"], shared.first_metrics["macro_f1"]
            if mine < theirs:
                refusals.append(
                    f"It is worse than the production model v{current.pk} on the same {shared.image_count} test "
                    f"images: macro F1 {mine:.3f} against {theirs:.3f}."
                )
    return refusals


@transaction.atomic
def model_version_promote(*, model_version: ModelVersion, actor, force: bool = False, reason: str = "") -> ModelVersion:
    """Make a model the production model, and queue the scoring of every image by it.

    Refused (see ``promotion_refusals``) unless ``force``, which needs a ``reason``: it goes in the audit log with
    the refusals it overrode.
    """
    current = ModelVersion.objects.select_for_update().filter(is_production=True).first()
    if current and current.pk == model_version.pk:
        raise ValidationError(f"Model v{model_version.pk} is already the production model.")
    reason = reason.strip()
    if force and not reason:
        raise ValidationError("A forced promotion needs a reason; it is kept in the audit log.")
    refusals = promotion_refusals(model_version=model_version, current=current)
    if refusals and not force:
        raise ValidationError([*refusals, "Promote with force and a reason to override."])
    now = timezone.now()
    if current:
        ModelVersion.objects.filter(pk=current.pk).update(is_production=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_production=True, promoted_at=now)
    model_version.refresh_from_db()
    audit_record(
        actor=actor,
        action="model_promoted",
        target=f"model_version:{model_version.pk}",
        before={"production": current.pk if current else None, "macro_f1": current.macro_f1 if current else None},
        after={
            "production": model_version.pk,
            "macro_f1": model_version.macro_f1,
            "forced": bool(force and refusals),
            "overridden": refusals if force else [],
        },
        reason=reason,
    )
    # The new production model scores every image (sent when this transaction commits).
    from ml.services.scoring import scoring_job_request

    scoring_job_request(model_version=model_version, created_by=actor)
    return model_version


def model_version_local_artifact(model_version: ModelVersion) -> Path:
    """A local path of the version's .keras file: where it lies on a local disk, else downloaded once into
    ML_WORK_DIR/models (named by its sha256: a version's file never changes)."""
    from curation.services.storage import stored_file_local

    target = Path(settings.ML_WORK_DIR) / "models" / f"{model_version.artifact_sha256}.keras"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    local = stored_file_local(name=model_version.artifact.name, download_to=partial)
    if local == partial:
        partial.replace(target)
        return target
    return local
