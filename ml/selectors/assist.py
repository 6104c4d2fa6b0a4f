"""What the production model says about images, for the people who label them.

The review queue's model orders, the suggestion a reader sees after deciding, reader–model agreement and the
quality dashboard read the model through this module only. Everything here reads stored ImageScore rows (the
calibrated probabilities in the version's output order); nothing loads TensorFlow.

The plain functions (`margin`, `ranked`, `contradiction`) and the SQL expressions (`production_margin`,
`production_contradiction`) say the same thing, one for Python and one for the database; a test holds them
together.
"""

from collections.abc import Iterable, Sequence

from django.db.models import Case, Count, F, FloatField, Func, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from curation.models import Image, LabelClass
from ml.models import ImageScore, ModelVersion
from ml.selectors.models import production_model
from ml.selectors.scores import production_scores

Ranked = list[tuple[str, float]]


# --- on one image's probabilities -----------------------------------------------------------------------------


def output_codes(model_version: ModelVersion) -> list[str]:
    """The class code of each output of the version, in output order."""
    return [model_version.class_map[str(index)] for index in range(len(model_version.class_map))]


def margin(probabilities: Sequence[float]) -> float:
    """Top probability minus the second: small when the model hesitates between two classes."""
    if not probabilities:
        raise ValueError("no probabilities")
    first, second = [*sorted(probabilities, reverse=True), 0.0][:2]
    return float(first - second)


def ranked(probabilities: Sequence[float], codes: Sequence[str], *, top_k: int | None = None) -> Ranked:
    """(code, probability), most probable first; ties in output order."""
    order = sorted(range(len(probabilities)), key=lambda index: (-probabilities[index], index))
    return [(codes[index], float(probabilities[index])) for index in order[:top_k]]


def contradiction(
    probabilities: Sequence[float], codes: Sequence[str], *, label_code: str | None, min_probability: float
) -> tuple[str, float] | None:
    """The model's (class, probability) when it names another class than `label_code` with at least
    `min_probability`; None when it agrees, hesitates, or does not know the label's class at all (a model never
    trained on a class cannot contradict it)."""
    if label_code is None or label_code not in codes:
        return None
    code, probability = ranked(probabilities, codes, top_k=1)[0]
    if code == label_code or probability < min_probability:
        return None
    return code, probability


# --- the production model, for many images ---------------------------------------------------------------------


def production_model_id() -> int | None:
    version = production_model()
    return version.pk if version else None


def production_probabilities(image_ids: Iterable[int]) -> dict[int, Ranked]:
    """image id → [(code, calibrated probability)] in the production model's output order, for the images it
    scored; empty without a production model (ml.selectors.scores.production_scores, paired with the codes)."""
    scores = production_scores(image_ids)
    if scores is None:
        return {}
    return {
        image_id: list(zip(scores.classes, map(float, calibrated), strict=True))
        for image_id, calibrated in scores.calibrated.items()
    }


def production_suggestion(image_id: int, *, top_k: int = 3) -> dict | None:
    """The production model's `top_k` classes for one image: {model_version, classes: [(code, probability)]};
    None without a production model or a score of the image."""
    version = production_model()
    if version is None:
        return None
    score = ImageScore.objects.filter(model_version=version, image_id=image_id).only("calibrated").first()
    if score is None:
        return None
    return {"model_version": version.pk, "classes": ranked(score.calibrated, output_codes(version), top_k=top_k)}


def production_top_codes(image_ids: Iterable[int] | None = None) -> dict[int, str]:
    """image id → the production model's top class code (all scored images when `image_ids` is None)."""
    version = production_model()
    if version is None:
        return {}
    codes = output_codes(version)
    scores = ImageScore.objects.filter(model_version=version)
    if image_ids is not None:
        scores = scores.filter(image_id__in=list(image_ids))
    return {image_id: codes[top] for image_id, top in scores.values_list("image_id", "top_index")}


def production_per_class_metrics() -> tuple[ModelVersion | None, dict[str, dict]]:
    """The production model and its test metrics per class code (precision, recall, f1, support)."""
    version = production_model()
    if version is None:
        return None, {}
    return version, {row["code"]: row for row in version.metrics.get("per_class", [])}


# --- in the database: expressions for querysets of curation Images ---------------------------------------------


class _RankedProbability(Func):
    """A JSON array column's highest number (`rank` 1) or second highest (`rank` 2); NULL when it has fewer."""

    output_field = FloatField()
    arity = 1
    # Literal SQL per database and rank: the array's elements, highest first, one of them.
    templates = {
        ("postgresql", 1): "(SELECT e.value::float8 FROM jsonb_array_elements_text(%(expressions)s) AS e "
        "ORDER BY 1 DESC LIMIT 1)",
        ("postgresql", 2): "(SELECT e.value::float8 FROM jsonb_array_elements_text(%(expressions)s) AS e "
        "ORDER BY 1 DESC LIMIT 1 OFFSET 1)",
        ("sqlite", 1): "(SELECT e.value FROM json_each(%(expressions)s) AS e ORDER BY e.value DESC LIMIT 1)",
        ("sqlite", 2): "(SELECT e.value FROM json_each(%(expressions)s) AS e ORDER BY e.value DESC LIMIT 1 OFFSET 1)",
    }

    def __init__(self, expression, *, rank: int):
        super().__init__(expression)
        self.rank = rank

    def as_sql(self, compiler, connection, **extra_context):
        template = self.templates.get((connection.vendor, self.rank))
        if template is None:
            raise NotImplementedError(f"model-ordered queues need PostgreSQL or SQLite, not {connection.vendor}")
        return super().as_sql(compiler, connection, template=template, **extra_context)


def _production_scores(version: ModelVersion):
    return ImageScore.objects.filter(model_version=version, image_id=OuterRef("pk"))


def production_margin() -> Subquery | None:
    """For Image querysets: the production model's margin (as `margin`), NULL for unscored images; None without a
    production model."""
    version = production_model()
    if version is None:
        return None
    scores = _production_scores(version).annotate(
        margin=_RankedProbability("calibrated", rank=1) - Coalesce(_RankedProbability("calibrated", rank=2), 0.0)
    )
    return Subquery(scores.values("margin")[:1], output_field=FloatField())


def _contradicting(scores, version: ModelVersion, *, min_probability: float):
    """`scores` of `version` where the model names another class than the image's label of record (its final
    label, else its source label) with at least `min_probability`, annotated with `record_output` (the label of
    record's output index) and `top` (the top probability). Images whose label the model does not know drop out."""
    codes = output_codes(version)
    ids = dict(LabelClass.objects.filter(code__in=codes).values_list("code", "pk"))
    whens = [When(Q(record_label=ids[code]), then=Value(index)) for index, code in enumerate(codes) if code in ids]
    return (
        scores.annotate(record_label=Coalesce(F("image__label_id"), F("image__source_label_id")))
        .annotate(
            record_output=Case(*whens, default=Value(None), output_field=IntegerField()),
            top=_RankedProbability("calibrated", rank=1),
        )
        .filter(record_output__isnull=False, top__gte=min_probability)
        .exclude(top_index=F("record_output"))
    )


def production_contradiction(*, min_probability: float) -> Subquery | None:
    """For Image querysets: the production model's top probability where it contradicts the image's label of
    record (final label, else source label) with at least `min_probability`; NULL otherwise; None without a
    production model. The same rule as `contradiction`."""
    version = production_model()
    if version is None:
        return None
    scores = _contradicting(_production_scores(version), version, min_probability=min_probability)
    return Subquery(scores.values("top")[:1], output_field=FloatField())


def _confident_disagreements(version: ModelVersion, *, min_probability: float):
    scores = ImageScore.objects.filter(model_version=version).exclude(image__status=Image.Status.EXCLUDED)
    return _contradicting(scores, version, min_probability=min_probability)


def production_confident_disagreements(*, min_probability: float, label_code: str | None = None) -> list[dict]:
    """Images (not excluded) whose label of record the production model contradicts with at least
    `min_probability`, most confident first: [{image, label, suggested, probability}]; `label_code` keeps one
    label of record."""
    version = production_model()
    if version is None:
        return []
    codes = output_codes(version)
    scores = _confident_disagreements(version, min_probability=min_probability)
    if label_code is not None:
        if label_code not in codes:
            return []
        scores = scores.filter(record_output=codes.index(label_code))
    return [
        {
            "image": score.image,
            "label": codes[score.record_output],
            "suggested": codes[score.top_index],
            "probability": score.top,
        }
        for score in scores.select_related("image").order_by("-top", "image_id")
    ]


def production_disagreement_counts(*, min_probability: float) -> dict[str, int]:
    """Label of record's class code → how many images (not excluded) the production model contradicts."""
    version = production_model()
    if version is None:
        return {}
    codes = output_codes(version)
    rows = (
        _confident_disagreements(version, min_probability=min_probability)
        .order_by()
        .values("record_output")
        .annotate(images=Count("pk"))
        .values_list("record_output", "images")
    )
    return {codes[output]: images for output, images in rows}
