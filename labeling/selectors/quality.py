"""The per-class data-quality dashboard: where each class stands in curation, how well readers agree on it,
and what the production model says about it. Each number comes with the query that lists its images."""

from dataclasses import dataclass, field

from curation.models import ExclusionReason, Image, LabelClass
from curation.selectors.images import duplicate_counts_per_record_label, image_counts_per_record_label
from labeling.selectors.agreement import agreement_report
from ml.selectors.assist import production_disagreement_counts, production_per_class_metrics

STATUSES = (Image.Status.LABELED, Image.Status.PENDING, Image.Status.DISPUTED, Image.Status.EXCLUDED)


@dataclass
class QualityRow:
    code: str
    name: str
    images: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    excluded_by_reason: dict[str, int] = field(default_factory=dict)
    kappa: float | None = None
    duplicates: int = 0
    precision: float | None = None
    recall: float | None = None
    test_support: int | None = None
    disagreements: int | None = None  # None: no production model


@dataclass
class QualityDashboard:
    rows: list[QualityRow]
    total: QualityRow
    exclusion_reasons: list[tuple[str, str]]  # the reasons some image is excluded for, in their order
    model_version: int | None
    min_probability: float
    double_read_images: int


def quality_dashboard(*, min_probability: float) -> QualityDashboard:
    """One row per class, by class of record (final label, else the source folder's); κ is the double-read
    kappa of the class against the rest (Fleiss' category kappa); precision and recall are the production
    model's on its test split; disagreements are the images (not excluded) whose class of record it
    contradicts with at least `min_probability`."""
    counts = image_counts_per_record_label()
    duplicates = duplicate_counts_per_record_label()
    agreement = agreement_report()
    kappas = {row["code"]: row["kappa"] for row in agreement.per_class}
    version, metrics = production_per_class_metrics()
    disagreements = production_disagreement_counts(min_probability=min_probability) if version else {}
    rows = []
    for label in LabelClass.objects.order_by("index"):
        row = QualityRow(code=label.code, name=label.name)
        for (record, status, reason), images in counts.items():
            if record != label.pk:
                continue
            row.images += images
            row.by_status[status] = row.by_status.get(status, 0) + images
            if status == Image.Status.EXCLUDED:
                row.excluded_by_reason[reason] = row.excluded_by_reason.get(reason, 0) + images
        row.kappa = kappas.get(label.code)
        row.duplicates = duplicates.get(label.pk, 0)
        tested = metrics.get(label.code, {})
        row.precision, row.recall, row.test_support = (
            tested.get("precision"),
            tested.get("recall"),
            tested.get("support"),
        )
        row.disagreements = disagreements.get(label.code, 0) if version else None
        rows.append(row)
    total = QualityRow(code="", name="All classes")
    total.images = sum(counts.values())
    for (_record, status, reason), images in counts.items():
        total.by_status[status] = total.by_status.get(status, 0) + images
        if status == Image.Status.EXCLUDED:
            total.excluded_by_reason[reason] = total.excluded_by_reason.get(reason, 0) + images
    total.duplicates = sum(duplicates.values())
    total.disagreements = sum(disagreements.values()) if version else None
    reasons = [(value, name) for value, name in ExclusionReason.choices if value in total.excluded_by_reason]
    return QualityDashboard(
        rows=rows,
        total=total,
        exclusion_reasons=reasons,
        model_version=version.pk if version else None,
        min_probability=min_probability,
        double_read_images=agreement.images_with_two_or_more,
    )
