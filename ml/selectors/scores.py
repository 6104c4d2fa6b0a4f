"""Stored per-image scores, read by other apps (labeling orders its queue from them) and by the scoring jobs."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from curation.models import Image
from ml.models import ImageScore, ModelVersion, ScoringJob, ScoringScope


@dataclass(frozen=True)
class ProductionScores:
    """The production model's calibrated probabilities of some images.

    ``classes`` are its class codes in output order; ``calibrated`` maps image id → probabilities in that order, for
    the images it has scored (an image without a row is not scored yet)."""

    model_version_id: int
    classes: list[str]
    calibrated: dict[int, list[float]]


def unscored_images(model_version: ModelVersion) -> QuerySet[Image]:
    """Images not excluded that this version has no score for, by id."""
    scored = ImageScore.objects.filter(model_version=model_version, image=OuterRef("pk"))
    return Image.objects.exclude(status=Image.Status.EXCLUDED).filter(~Exists(scored)).order_by("pk")


def production_scores(image_ids: Iterable[int]) -> ProductionScores | None:
    """The production model's calibrated probabilities of these images; None when no model is in production.

    One query for the model and one for the scores, whatever the number of images."""
    version = ModelVersion.objects.filter(is_production=True).only("pk", "class_map").first()
    if version is None:
        return None
    rows = ImageScore.objects.filter(model_version=version, image_id__in=list(image_ids)).values_list(
        "image_id", "calibrated"
    )
    return ProductionScores(
        model_version_id=version.pk,
        classes=[version.class_map[str(index)] for index in range(len(version.class_map))],  # output order
        calibrated=dict(rows),
    )


def latest_all_images_job(model_version: ModelVersion) -> ScoringJob | None:
    return (
        ScoringJob.objects.filter(model_version=model_version, scope=ScoringScope.ALL_IMAGES)
        .order_by("-created_at", "-pk")
        .first()
    )


def scoring_job_list() -> QuerySet[ScoringJob]:
    return ScoringJob.objects.select_related("snapshot", "evaluation").order_by("-created_at", "-pk")
