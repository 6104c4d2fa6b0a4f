from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce

from curation.models import Image, ImageSource, ImportBatch, LabelClass

# What readers may see of an image's metadata, beside the image: clinical context only. Never the
# source's label (dx, the label column) nor anything else the file carried.
CLINICAL_CONTEXT_FIELDS = ("age", "sex", "body_site", "fitzpatrick", "modality")


def image_clinical_context(image: Image) -> dict:
    return {key: image.metadata[key] for key in CLINICAL_CONTEXT_FIELDS if key in (image.metadata or {})}


def image_list(
    *,
    label: str | None = None,
    status: str | None = None,
    source: str | None = None,
    conflicts: bool | None = None,
    metadata: dict | None = None,
    record_label: str | None = None,
    exclusion_reason: str | None = None,
    in_duplicate_group: bool | None = None,
) -> QuerySet[Image]:
    """Images with what the curator pages and the API show, in a constant number of queries.

    `metadata` filters on metadata values, e.g. {"modality": "dermoscopic", "fitzpatrick": 5}.
    `record_label` is the class an image stands for now: its final label, else its source folder's.
    """
    images = Image.objects.select_related("label", "source_label").prefetch_related(
        Prefetch("provenance", queryset=ImageSource.objects.select_related("source", "source_label").order_by("pk"))
    )
    if label:
        images = images.filter(label__code=label)
    if status:
        images = images.filter(status=status)
    if source:
        images = images.filter(provenance__source__name=source).distinct()
    if conflicts is not None:
        images = images.filter(conflicting_source_labels=conflicts)
    if record_label:
        images = images.filter(record_label_filter(record_label))
    if exclusion_reason:
        images = images.filter(exclusion_reason=exclusion_reason)
    if in_duplicate_group is not None:
        images = images.filter(duplicate_group__isnull=not in_duplicate_group)
    for key, value in (metadata or {}).items():
        images = images.filter(**{f"metadata__{key}": value})
    return images.order_by("pk")


def record_label_filter(code: str) -> Q:
    """Images whose class of record is `code`: their final label, else (not labeled) their source folder's."""
    return Q(label__code=code) | Q(label__isnull=True, source_label__code=code)


def image_counts_per_record_label() -> dict[tuple[int | None, str, str], int]:
    """(class of record's id, status, exclusion reason) → images; the class of record is the final label, else
    the source folder's."""
    rows = (
        Image.objects.annotate(record=Coalesce("label_id", "source_label_id"))
        .values("record", "status", "exclusion_reason")
        .annotate(images=Count("pk"))
        .order_by()
    )
    return {(row["record"], row["status"], row["exclusion_reason"]): row["images"] for row in rows}


def duplicate_counts_per_record_label() -> dict[int | None, int]:
    """Class of record's id → images in a near-duplicate group."""
    rows = (
        Image.objects.filter(duplicate_group__isnull=False)
        .annotate(record=Coalesce("label_id", "source_label_id"))
        .values("record")
        .annotate(images=Count("pk"))
        .order_by()
    )
    return {row["record"]: row["images"] for row in rows}


def image_counts_per_class() -> list[dict]:
    """Per class: images labeled with it, and images whose source folder said it."""
    labeled = dict(Image.objects.labeled().values("label_id").annotate(n=Count("pk")).values_list("label_id", "n"))
    by_source = dict(
        Image.objects.values("source_label_id").annotate(n=Count("pk")).values_list("source_label_id", "n")
    )
    return [
        {"label": label, "labeled": labeled.get(label.pk, 0), "source": by_source.get(label.pk, 0)}
        for label in LabelClass.objects.order_by("index")
    ]


def image_counts_per_status() -> dict[str, int]:
    counts = dict(Image.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in Image.Status.values}


def import_batch_list() -> QuerySet[ImportBatch]:
    return ImportBatch.objects.select_related("source", "created_by").order_by("-created_at")
