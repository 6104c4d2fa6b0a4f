from django.utils import timezone

from labeling.models import Review
from labeling.services.queue import reviewable_images


def reader_progress(*, reader) -> dict:
    """My reviews today and in total, and the images left for me."""
    mine = Review.objects.active().filter(reader=reader)
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": mine.filter(created_at__gte=start_of_day).count(),
        "total": mine.count(),
        "left": reviewable_images(reader=reader).count(),
    }
