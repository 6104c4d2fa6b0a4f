"""Readers and the production model: how often a reader's class is the model's top class, per class, and
what readers did after the model's suggestion was shown to them."""

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Q

from curation.models import LabelClass
from labeling.models import Review, SuggestionReveal
from ml.selectors.assist import production_model_id, production_top_codes


@dataclass
class ReaderModelAgreement:
    model_version: int | None
    reads: int = 0  # readers' class decisions on images the model scored
    agreed: int = 0
    per_class: list[dict] = field(default_factory=list)
    reveals: dict = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.agreed / self.reads if self.reads else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def reader_model_agreement() -> ReaderModelAgreement:
    """Over every active class decision (cannot-judge aside) on an image the production model scored: per class,
    how many reads named it and how many of those the model's top class matched; how many times the model's top
    class was it and how many of those the reader matched."""
    report = ReaderModelAgreement(model_version=production_model_id())
    reveals = SuggestionReveal.objects.aggregate(
        shown=Count("pk"),
        agreed=Count("pk", filter=Q(agreed=True)),
        taken_back=Count("pk", filter=Q(review__retracted_at__isnull=False)),
        decided_again=Count("pk", filter=Q(revised_by__isnull=False)),
        changed=Count("pk", filter=Q(label_changed=True)),
        changed_to_model=Count("pk", filter=Q(changed_to_suggestion=True)),
    )
    report.reveals = reveals
    if report.model_version is None:
        return report
    model_says = production_top_codes()
    reader_counts, model_counts, agreed = Counter(), Counter(), Counter()
    for image_id, code in (
        Review.objects.active().filter(label__isnull=False).values_list("image_id", "label__code").iterator()
    ):
        model_code = model_says.get(image_id)
        if model_code is None:
            continue
        reader_counts[code] += 1
        model_counts[model_code] += 1
        if code == model_code:
            agreed[code] += 1
    report.reads = sum(reader_counts.values())
    report.agreed = sum(agreed.values())
    for code, name in LabelClass.objects.order_by("index").values_list("code", "name"):
        report.per_class.append(
            {
                "code": code,
                "name": name,
                "reader_said": reader_counts[code],
                "model_agreed": _share(agreed[code], reader_counts[code]),
                "model_said": model_counts[code],
                "reader_agreed": _share(agreed[code], model_counts[code]),
            }
        )
    return report
