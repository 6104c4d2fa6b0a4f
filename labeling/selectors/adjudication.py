from django.db.models import Prefetch, QuerySet

from curation.models import Image, ImageSource, SnapshotItem
from labeling.models import Review


def disputed_images() -> QuerySet[Image]:
    return Image.objects.disputed().order_by("decided_at", "pk")


def disputed_image_detail() -> QuerySet[Image]:
    """An image with every review (retracted ones too, marked) and its source labels."""
    return Image.objects.select_related("source_label").prefetch_related(
        Prefetch(
            "reviews", queryset=Review.objects.select_related("reader", "label", "replaced_by").order_by("created_at")
        ),
        Prefetch("provenance", queryset=ImageSource.objects.select_related("source", "source_label")),
    )


def image_history_detail() -> QuerySet[Image]:
    """Everything curators see about an image: reviews, adjudication, snapshots (the audit trail is
    core's `audit_events_for_image`)."""
    return (
        disputed_image_detail()
        .select_related("label", "duplicate_group")
        .prefetch_related(
            Prefetch("snapshot_items", queryset=SnapshotItem.objects.select_related("snapshot", "label")),
        )
    )
