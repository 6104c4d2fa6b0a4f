from django.db.models import Count, Prefetch, QuerySet

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
) -> QuerySet[Image]:
    """Images with what the curator pages and the API show, in a constant number of queries.

    `metadata` filters on metadata values, e.g. {"modality": "dermoscopic", "fitzpatrick": 5}.
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
    for key, value in (metadata or {}).items():
        images = images.filter(**{f"metadata__{key}": value})
    return images.order_by("pk")


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
