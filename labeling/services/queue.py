"""The review queue: each reader gets images they have not reviewed, that still
need reviews, and that no one else holds. Holds are leases that expire."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from curation.models import Image
from labeling.errors import NOT_IN_QUEUE, ReviewConflict
from labeling.models import Review, ReviewLease, ReviewSkip

QUEUE_ORDERS = {"random": ("random_key", "pk"), "oldest": ("pk",)}


def _queue_order() -> tuple[str, ...]:
    return QUEUE_ORDERS.get(settings.DERMCURATE_QUEUE_ORDER, QUEUE_ORDERS["random"])


def reviewable_images(*, reader):
    """Images the reader may take next: pending, not reviewed by them, not held by another
    reader, not skipped by them lately."""
    now = timezone.now()
    skipped_since = now - timedelta(seconds=settings.DERMCURATE_SKIP_SECONDS)
    return Image.objects.pending().filter(
        ~Exists(Review.objects.filter(image=OuterRef("pk"), reader=reader, retracted_at__isnull=True)),
        ~Exists(ReviewLease.objects.filter(image=OuterRef("pk"), expires_at__gt=now).exclude(reader=reader)),
        ~Exists(ReviewSkip.objects.filter(image=OuterRef("pk"), reader=reader, skipped_at__gt=skipped_since)),
    )


def review_queue_next(*, reader, count: int = 1) -> list[ReviewLease]:
    """Lease up to `count` images to the reader (the ones they already hold first) and return the leases.

    Two readers asking at the same moment never get the same image: rows are
    locked with SKIP LOCKED on PostgreSQL, and the lease is unique per image.
    """
    count = max(1, min(count, 10))
    now = timezone.now()
    expires = now + timedelta(seconds=settings.DERMCURATE_LEASE_SECONDS)
    held = list(
        ReviewLease.objects.filter(reader=reader, expires_at__gt=now, image__in=reviewable_images(reader=reader))
        .select_related("image")
        .order_by("leased_at", "pk")[:count]
    )
    for lease in held:
        lease.expires_at = expires
    ReviewLease.objects.bulk_update(held, ["expires_at"])
    missing = count - len(held)
    if missing <= 0:
        return held
    # A reader whose query started just before another reader's leases were committed may lock
    # images that are already leased (the lease is unique, so they are refused): ask again, a few
    # times, rather than hand out fewer images than there are.
    for _attempt in range(3):
        lost = 0
        with transaction.atomic():
            candidates = list(
                reviewable_images(reader=reader)
                .exclude(pk__in=[lease.image_id for lease in held])
                .order_by(*_queue_order())
                .select_for_update(skip_locked=True, of=("self",))[:missing]
            )
            for image in candidates:
                lease = _lease(image=image, reader=reader, now=now, expires=expires)
                if lease is None:
                    lost += 1
                else:
                    held.append(lease)
                    missing -= 1
        if missing == 0 or not lost:
            break
    return held


def _lease(*, image: Image, reader, now, expires) -> ReviewLease | None:
    # The image's old lease (expired, or this reader's) is replaced.
    ReviewLease.objects.filter(image=image).filter(Q(expires_at__lte=now) | Q(reader=reader)).delete()
    try:
        with transaction.atomic():
            return ReviewLease.objects.create(image=image, reader=reader, expires_at=expires)
    except IntegrityError:
        return None  # another reader's fresh lease


def review_lease_release(*, reader, image_id: int, skip: bool = True) -> None:
    """Give the image back to the queue; a skipped image stays out of this reader's queue for a while
    (and is listed in their history, to reopen). Only an image the reader holds can be skipped."""
    with transaction.atomic():
        released, _ = ReviewLease.objects.filter(image_id=image_id, reader=reader).delete()
        if skip:
            if not released:
                raise ReviewConflict(NOT_IN_QUEUE, code="not_in_queue")
            ReviewSkip.objects.create(image_id=image_id, reader=reader)


def review_queue_open(*, reader, image_id: int) -> tuple[str, ReviewLease | None]:
    """Open an image from the reader's history: ("change", None) for one they decided (still
    pending), ("new", lease) for one they skipped, which is leased to them again.

    Any other image is refused: a reader decides only the images they were given.
    """
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None:
            raise ValidationError(f"There is no image {image_id}.", code="no_image")
        decided = Review.objects.active().filter(image=image, reader=reader).exists()
        skipped = ReviewSkip.objects.filter(image=image, reader=reader).exists()
        if not decided and not skipped:
            raise ReviewConflict(NOT_IN_QUEUE, code="not_in_queue")
        if image.status != Image.Status.PENDING:
            raise ValidationError(f"Image {image.pk} is already decided.", code="decided")
        if decided:
            return "change", None
        lease = review_lease_take(reader=reader, image=image)
        if lease is None:
            raise ReviewConflict(
                f"Another reader has image {image.pk} open just now; try again later.", code="held_by_other"
            )
        ReviewSkip.objects.filter(image=image, reader=reader).delete()
        return "new", lease


def review_lease_take(*, reader, image: Image) -> ReviewLease | None:
    """Hold one given image for the reader (after an undo, the image comes back to them)."""
    now = timezone.now()
    return _lease(
        image=image, reader=reader, now=now, expires=now + timedelta(seconds=settings.DERMCURATE_LEASE_SECONDS)
    )
