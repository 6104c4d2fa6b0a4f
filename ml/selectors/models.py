from django.db.models import QuerySet

from ml.models import ModelVersion, TrainingRun

COMPARED_METRICS = ("loss", "accuracy", "balanced_accuracy", "macro_f1", "top2_accuracy")


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("snapshot", "created_by", "model_version").order_by("-created_at", "-pk")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("run", "snapshot").order_by("-created_at", "-pk")


def production_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_production=True).first()


def model_version_compare(first: ModelVersion, second: ModelVersion, *, shared=None) -> dict:
    """Side by side: each headline metric and each class's precision, recall and F1, with second − first.

    On the images both were scored on (``shared``, a SharedEvaluation) when there are any; otherwise each on its own
    test split, which ``same_images`` False says."""
    same_images = bool(shared is not None and shared.image_count)
    first_metrics = shared.first_metrics if same_images else first.metrics
    second_metrics = shared.second_metrics if same_images else second.metrics
    metrics = [
        {
            "name": name,
            "first": first_metrics.get(name),
            "second": second_metrics.get(name),
            "difference": _difference(first_metrics.get(name), second_metrics.get(name)),
        }
        for name in COMPARED_METRICS
    ]
    first_classes = {row["code"]: row for row in first_metrics.get("per_class", [])}
    second_classes = {row["code"]: row for row in second_metrics.get("per_class", [])}
    per_class = []
    for code in [*first_classes, *(c for c in second_classes if c not in first_classes)]:
        a, b = first_classes.get(code, {}), second_classes.get(code, {})
        per_class.append(
            {
                "code": code,
                **{f"{field}_first": a.get(field) for field in ("precision", "recall", "f1", "support")},
                **{f"{field}_second": b.get(field) for field in ("precision", "recall", "f1", "support")},
                "f1_difference": _difference(a.get("f1"), b.get("f1")),
            }
        )
    return {
        "first": first.pk,
        "second": second.pk,
        "metrics": metrics,
        "per_class": per_class,
        "same_snapshot": first.snapshot_id == second.snapshot_id,
        "same_images": same_images,
        "image_count": shared.image_count if same_images else None,
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a
