from django.utils import timezone

from labeling.models import Review
from labeling.services.queue import reviewable_images

# Counting every image left costs a scan of the pending images; beyond this many the
# reader only needs to know there are plenty.
LEFT_COUNT_CAP = 1000


def reader_progress(*, reader) -> dict:
    """My reviews today and in total, and the images left for me (at most LEFT_COUNT_CAP: "1000+")."""
    mine = Review.objects.active().filter(reader=reader)
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    left = reviewable_images(reader=reader).order_by().values("pk")[: LEFT_COUNT_CAP + 1].count()
    return {
        "today": mine.filter(created_at__gte=start_of_day).count(),
        "total": mine.count(),
        "left": min(left, LEFT_COUNT_CAP),
        "left_more": left > LEFT_COUNT_CAP,
    }
