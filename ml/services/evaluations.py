"""Per-image probabilities and the evaluations made from them: common ground for comparing model versions."""

from collections.abc import Iterable, Sequence

from django.db import transaction

from curation.models import LabelClass
from ml.models import EvaluationKind, ImageScore, ModelEvaluation, ModelVersion

SCORE_BATCH = 1000


def class_names_of(model_version: ModelVersion) -> list[str]:
    """The version's class codes in its output order."""
    return [model_version.class_map[str(index)] for index in range(len(model_version.class_map))]


def image_scores_store(
    *, model_version: ModelVersion, image_ids: Sequence[int], probabilities: Sequence[Sequence[float]]
) -> int:
    """Store uncalibrated probabilities (rows follow image_ids, columns the version's outputs) with their calibrated
    copy; an image the version already scored keeps its row (scores of one version never change)."""
    from ml.training.calibrate import apply_temperature

    if len(image_ids) != len(probabilities):
        raise ValueError(f"{len(image_ids)} image ids but {len(probabilities)} rows of probabilities.")
    if not len(image_ids):
        return 0
    calibrated = apply_temperature(probabilities, model_version.temperature)
    rows = [
        ImageScore(
            model_version=model_version,
            image_id=image_id,
            probabilities=[float(p) for p in raw],
            calibrated=[float(p) for p in calibrated_row],
            top_index=int(max(range(len(raw)), key=raw.__getitem__)),
        )
        for image_id, raw, calibrated_row in zip(image_ids, probabilities, calibrated, strict=True)
    ]
    created = ImageScore.objects.bulk_create(rows, batch_size=SCORE_BATCH, ignore_conflicts=True)
    return len(created)


def judged_labels(model_version: ModelVersion, labels: dict[int, int]) -> dict[int, str]:
    """image id → class code, for the images whose class the version knows (it cannot be judged on others)."""
    codes = dict(LabelClass.objects.values_list("pk", "code"))
    known = set(model_version.class_map.values())
    return {image_id: codes[label_id] for image_id, label_id in labels.items() if codes[label_id] in known}


def metrics_on(model_version: ModelVersion, labels: dict[int, str], *, bootstrap: bool = True) -> dict:
    """The version's metrics on these images (image id → class code), from its stored scores.

    Every image must have been scored. Empty when there are no images."""
    from ml.training.evaluate import BOOTSTRAP_SAMPLES, evaluate_predictions

    class_names = class_names_of(model_version)
    index_of = {code: index for index, code in enumerate(class_names)}
    image_ids = sorted(labels)
    probabilities = dict(
        ImageScore.objects.filter(model_version=model_version, image_id__in=image_ids).values_list(
            "image_id", "probabilities"
        )
    )
    missing = [image_id for image_id in image_ids if image_id not in probabilities]
    if missing:
        raise ValueError(f"Model v{model_version.pk} has not scored {len(missing)} of these images, e.g. {missing[0]}.")
    if not image_ids:
        return {}
    return evaluate_predictions(
        [index_of[labels[image_id]] for image_id in image_ids],
        [probabilities[image_id] for image_id in image_ids],
        class_names,
        bootstrap_samples=BOOTSTRAP_SAMPLES if bootstrap else 0,
    )


@transaction.atomic
def model_evaluation_create(
    *,
    model_version: ModelVersion,
    kind: str,
    labels: dict[int, str],
    snapshot=None,
    metrics: dict | None = None,
) -> ModelEvaluation:
    """Record the version's metrics on these images (computed from its scores unless given)."""
    if kind not in EvaluationKind.values:
        raise ValueError(f"Unknown evaluation kind {kind!r}.")
    return ModelEvaluation.objects.create(
        model_version=model_version,
        kind=kind,
        snapshot=snapshot,
        labels={str(image_id): code for image_id, code in sorted(labels.items())},
        image_count=len(labels),
        metrics=metrics if metrics is not None else metrics_on(model_version, labels),
    )


def scored_image_ids(model_version: ModelVersion, image_ids: Iterable[int] | None = None) -> set[int]:
    scores = ImageScore.objects.filter(model_version=model_version)
    if image_ids is not None:
        scores = scores.filter(image_id__in=list(image_ids))
    return set(scores.values_list("image_id", flat=True))
