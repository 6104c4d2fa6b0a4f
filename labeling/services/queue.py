"""The review queue: each reader gets images they have not reviewed, that still
need reviews, and that no one else holds. Holds are leases that expire.

The order is a setting (DERMCURATE_QUEUE_ORDER): `random`, `oldest`, or one the
production model sets (`uncertainty`: least margin between its top two
calibrated probabilities first; `disagreement`: images whose label the model
contradicts with high confidence first). Model orders keep near-duplicates and
lesion or patient siblings apart, and fall back to random for unscored images.
Nothing the reader receives says why an image came next.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from curation.models import Image
from labeling.errors import NOT_IN_QUEUE, ReviewConflict
from labeling.models import RereviewRound, Review, ReviewLease, ReviewSkip
from ml.selectors.assist import production_contradiction, production_margin

QUEUE_ORDERS = {"random": ("random_key", "pk"), "oldest": ("pk",)}
MODEL_ORDERS = ("uncertainty", "disagreement")
# Metadata columns that tie images of one lesion or one patient together (HAM10000 and ISIC names).
SIBLING_FIELDS = ("lesion_id", "patient_id")
# How many more candidates than asked for a model order looks at to keep siblings apart.
DIVERSITY_LOOKAHEAD = 20


def _ordered(images: QuerySet[Image]) -> tuple[QuerySet[Image], bool]:
    """The images in the queue's order, and whether it is a model order (which keeps siblings apart)."""
    order = settings.DERMCURATE_QUEUE_ORDER
    if order == "uncertainty":
        margin = production_margin()
        if margin is not None:
            ranked = images.annotate(queue_rank=margin)
            return ranked.order_by(F("queue_rank").asc(nulls_last=True), "random_key", "pk"), True
    elif order == "disagreement":
        contradiction = production_contradiction(min_probability=settings.DERMCURATE_DISAGREEMENT_MIN_PROBABILITY)
        if contradiction is not None:
            ranked = images.annotate(queue_rank=contradiction)
            return ranked.order_by(F("queue_rank").desc(nulls_last=True), "random_key", "pk"), True
    return images.order_by(*QUEUE_ORDERS.get(order, QUEUE_ORDERS["random"])), False


def sibling_keys(image: Image) -> set[str]:
    """What ties the image to others a reader should not see back to back: its duplicate group, its lesion,
    its patient."""
    keys = {f"duplicates:{image.duplicate_group_id}"} if image.duplicate_group_id else set()
    metadata = image.metadata or {}
    for field in SIBLING_FIELDS:
        value = metadata.get(field)
        if value not in (None, ""):
            keys.add(f"{field}:{value}")
    return keys


def _recently_served_keys(*, reader, held_image_ids: list[int]) -> set[str]:
    """Sibling keys of the images the reader holds and of their last DERMCURATE_QUEUE_DIVERSITY_WINDOW reviews."""
    window = settings.DERMCURATE_QUEUE_DIVERSITY_WINDOW
    reviewed = list(
        Review.objects.filter(reader=reader).order_by("-created_at", "-pk").values_list("image_id", flat=True)[:window]
    )
    keys: set[str] = set()
    for image in Image.objects.filter(pk__in=[*held_image_ids, *reviewed]).only("duplicate_group_id", "metadata"):
        keys |= sibling_keys(image)
    return keys


def diverse_order(candidates: list[Image], *, served: set[str]) -> list[Image]:
    """The candidates in their order, except that one sharing a duplicate group, lesion or patient with an image
    served lately or placed before it goes after every candidate that shares none (siblings still come, last)."""
    placed, passed_over = [], []
    for image in candidates:
        keys = sibling_keys(image)
        if keys & served:
            passed_over.append(image)
        else:
            placed.append(image)
            served |= keys
    return placed + passed_over


def _lease_in_preference(*, reader, reviewable, ordered, held, wanted: int, now, expires):
    """Lease up to `wanted` images in a model order, siblings kept apart; returns (leases, lost).

    The order is read without locks, then images are locked one at a time (SKIP LOCKED) in that order: locking
    the whole lookahead would hide it from readers asking at the same moment, who would find the queue empty.
    """
    candidates = list(ordered[: wanted + DIVERSITY_LOOKAHEAD])
    served = _recently_served_keys(reader=reader, held_image_ids=[lease.image_id for lease in held])
    leases, lost = [], 0
    for candidate in diverse_order(candidates, served=served):
        image = reviewable.filter(pk=candidate.pk).select_for_update(skip_locked=True, of=("self",)).first()
        if image is None:
            continue  # another reader is leasing it just now, or it is no longer in this reader's queue
        lease = _lease(image=image, reader=reader, now=now, expires=expires)
        if lease is None:
            lost += 1
            continue
        leases.append(lease)
        if len(leases) == wanted:
            break
    return leases, lost


def reviewable_images(*, reader):
    """Images the reader may take next: pending, not reviewed by them, not held by another
    reader, not skipped by them lately."""
    now = timezone.now()
    skipped_since = now - timedelta(seconds=settings.DERMCURATE_SKIP_SECONDS)
    return Image.objects.pending().filter(
        ~Exists(Review.objects.filter(image=OuterRef("pk"), reader=reader, retracted_at__isnull=True)),
        # A re-review round is read by readers who have not seen the image before.
        ~Exists(RereviewRound.objects.open().filter(image=OuterRef("pk"), excluded_readers=reader)),
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
            reviewable = reviewable_images(reader=reader).exclude(pk__in=[lease.image_id for lease in held])
            ordered, model_order = _ordered(reviewable)
            if model_order:
                leases, lost = _lease_in_preference(
                    reader=reader, reviewable=reviewable, ordered=ordered, held=held, wanted=missing, now=now,
                    expires=expires,
                )  # fmt: skip
            else:
                leases = []
                for image in ordered.select_for_update(skip_locked=True, of=("self",))[:missing]:
                    lease = _lease(image=image, reader=reader, now=now, expires=expires)
                    if lease is None:
                        lost += 1
                    else:
                        leases.append(lease)
            held.extend(leases)
            missing -= len(leases)
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
        if RereviewRound.objects.open().filter(image=image, excluded_readers=reader).exists():
            raise ValidationError(f"Image {image.pk} is being read again by other readers.", code="decided")
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
