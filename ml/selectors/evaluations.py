"""Comparing model versions on the same images with the same labels."""

from dataclasses import dataclass, field

from curation.models import LabelClass
from curation.selectors.snapshots import lineage_test_labels
from ml.models import EvaluationKind, ImageScore, ModelEvaluation, ModelVersion
from ml.services.evaluations import metrics_on


@dataclass
class SharedEvaluation:
    """Both versions' metrics on the lineage test images that both scored, of classes both know."""

    first: ModelVersion
    second: ModelVersion
    labels: dict[int, str]  # image id → class code
    first_metrics: dict = field(default_factory=dict)
    second_metrics: dict = field(default_factory=dict)
    unscored_by_first: int = 0  # lineage test images (of shared classes) the first has no score for
    unscored_by_second: int = 0

    @property
    def image_count(self) -> int:
        return len(self.labels)

    @property
    def description(self) -> str:
        text = (
            f"{self.image_count} images of the lineage's protected test split (every image any snapshot put in its "
            f"test split, labeled as in the newest snapshot holding it) that both v{self.first.pk} and "
            f"v{self.second.pk} were scored on"
        )
        missing = [
            f"v{version.pk} has no score for {count}"
            for version, count in ((self.first, self.unscored_by_first), (self.second, self.unscored_by_second))
            if count
        ]
        return text + (
            f"; left out: {', '.join(missing)} (score it on the newer snapshot to include them)" if missing else ""
        )


def shared_evaluation(first: ModelVersion, second: ModelVersion, *, bootstrap: bool = False) -> SharedEvaluation:
    codes = dict(LabelClass.objects.values_list("pk", "code"))
    shared_classes = set(first.class_map.values()) & set(second.class_map.values())
    lineage = {
        image_id: codes[label_id]
        for image_id, label_id in lineage_test_labels().items()
        if codes[label_id] in shared_classes
    }
    scored = {
        version.pk: set(
            ImageScore.objects.filter(model_version=version, image_id__in=list(lineage)).values_list(
                "image_id", flat=True
            )
        )
        for version in (first, second)
    }
    labels = {image_id: code for image_id, code in lineage.items() if image_id in scored[first.pk] & scored[second.pk]}
    result = SharedEvaluation(
        first=first,
        second=second,
        labels=labels,
        unscored_by_first=len(lineage) - len(scored[first.pk]),
        unscored_by_second=len(lineage) - len(scored[second.pk]),
    )
    if labels:
        result.first_metrics = metrics_on(first, labels, bootstrap=bootstrap)
        result.second_metrics = metrics_on(second, labels, bootstrap=bootstrap)
    return result


def model_evaluations(model_version: ModelVersion) -> list[ModelEvaluation]:
    """The newest evaluation of each kind and snapshot."""
    newest: dict[tuple, ModelEvaluation] = {}
    for evaluation in model_version.evaluations.select_related("snapshot").order_by("-created_at", "-pk"):
        newest.setdefault((evaluation.kind, evaluation.snapshot_id), evaluation)
    order = {kind: index for index, kind in enumerate(EvaluationKind.values)}
    return sorted(newest.values(), key=lambda evaluation: (order[evaluation.kind], evaluation.snapshot_id or 0))


def own_test_evaluation(model_version: ModelVersion) -> ModelEvaluation | None:
    return (
        model_version.evaluations.filter(kind=EvaluationKind.OWN_TEST, snapshot=model_version.snapshot_id)
        .order_by("-created_at", "-pk")
        .first()
    )


def confusion_cell_images(model_version: ModelVersion, *, true_code: str, predicted_code: str) -> list[dict]:
    """The version's own test images of one confusion-matrix cell, with their calibrated probabilities."""
    evaluation = own_test_evaluation(model_version)
    if evaluation is None:
        return []
    class_names = [model_version.class_map[str(index)] for index in range(len(model_version.class_map))]
    if predicted_code not in class_names:
        return []
    predicted_index = class_names.index(predicted_code)
    image_ids = [int(image_id) for image_id, code in evaluation.labels.items() if code == true_code]
    scores = (
        ImageScore.objects.filter(model_version=model_version, image_id__in=image_ids, top_index=predicted_index)
        .select_related("image")
        .order_by("image_id")
    )
    rows = []
    for score in scores:
        ranked = sorted(range(len(class_names)), key=lambda index: -score.calibrated[index])
        rows.append(
            {
                "image": score.image,
                "true_probability": score.calibrated[class_names.index(true_code)]
                if true_code in class_names
                else None,
                "top": [(class_names[index], score.calibrated[index]) for index in ranked[:3]],
            }
        )
    return rows


def class_names_by_code(codes) -> dict[str, str]:
    """Clinical names of these class codes."""
    return dict(LabelClass.objects.filter(code__in=list(codes)).values_list("code", "name"))


def confusion_table(model_version: ModelVersion) -> dict:
    """The own-test confusion matrix as rows a template renders: clinical names, each cell with its count and the
    share of its true class (for shading)."""
    metrics = model_version.metrics
    codes = [row["code"] for row in metrics.get("per_class", [])]
    names = class_names_by_code(codes)
    rows = []
    for true_code, counts in zip(codes, metrics.get("confusion_matrix", []), strict=False):
        total = sum(counts)
        rows.append(
            {
                "code": true_code,
                "name": names.get(true_code, true_code),
                "total": total,
                "cells": [
                    {
                        "predicted": predicted,
                        "count": count,
                        "percent": round(100 * count / total) if total else 0,
                        "diagonal": predicted == true_code,
                    }
                    for predicted, count in zip(codes, counts, strict=True)
                ],
            }
        )
    columns = [{"code": code, "name": names.get(code, code)} for code in codes]
    return {"columns": columns, "rows": rows}


def per_class_rows(metrics: dict) -> list[dict]:
    names = class_names_by_code(row["code"] for row in metrics.get("per_class", []))
    return [{**row, "name": names.get(row["code"], row["code"])} for row in metrics.get("per_class", [])]
