"""A reader's own history: their decisions, newest first, and the images they skipped."""

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from curation.models import Image
from labeling.models import Review, ReviewSkip

SKIPPED_SHOWN = 100


def reader_history(*, reader, image_id: int | None = None) -> QuerySet[Review]:
    """The reader's active decisions (a changed one once, as it stands now), newest first.

    Only the image's own `status` comes along, to tell "can still be changed"
    (pending) from "decided"; never the other readers' decisions or the final label.
    """
    reviews = (
        Review.objects.active()
        .by(reader)
        .select_related("label", "replaces")
        .select_related("image")
        .only(
            "pk",
            "image_id",
            "label__code",
            "label__name",
            "label__index",
            "reason",
            "comment",
            "confidence",
            "seconds_spent",
            "created_at",
            "replaces_id",
            "replaces__created_at",
            "image__status",
        )
        .order_by("-created_at", "-pk")
    )
    if image_id is not None:
        reviews = reviews.filter(image_id=image_id)
    return reviews


def reader_skipped(*, reader) -> QuerySet[Image]:
    """Pending images the reader skipped and has not decided since, latest skip first."""
    last_skip = ReviewSkip.objects.filter(image=OuterRef("pk"), reader=reader).order_by("-skipped_at")
    return (
        Image.objects.pending()
        .annotate(last_skipped=Subquery(last_skip.values("skipped_at")[:1]))
        .filter(last_skipped__isnull=False)
        .filter(~Exists(Review.objects.active().filter(image=OuterRef("pk"), reader=reader)))
        .only("pk", "status")
        .order_by("-last_skipped", "-pk")[:SKIPPED_SHOWN]
    )
