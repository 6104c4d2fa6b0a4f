"""Re-review rounds: a curator sends decided images back for a fresh blind read by readers who have not seen
them; each round keeps the label before and after, so one can count how many re-reads changed the label."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from curation.models import Image
from curation.services.images import image_reopen
from labeling.models import Adjudication, RereviewRound, Review, ReviewLease, ReviewSkip

MAX_IMAGES_PER_REQUEST = 1000


def _listed(image_ids) -> str:
    return ", ".join(str(image_id) for image_id in image_ids)


def rereview_round_current(image: Image) -> RereviewRound | None:
    """The round whose reviews count for the image now: its latest, open or closed; None for the first read."""
    return RereviewRound.objects.filter(image=image).order_by("-pk").first()


def _seen_by(image: Image) -> set[int]:
    reviewers = Review.objects.filter(image=image).values_list("reader_id", flat=True)
    skippers = ReviewSkip.objects.filter(image=image).values_list("reader_id", flat=True)
    adjudicators = Adjudication.objects.filter(image=image).values_list("adjudicator_id", flat=True)
    return {*reviewers, *skippers, *adjudicators}


def _close(round_: RereviewRound, image: Image) -> None:
    round_.closed_at = timezone.now()
    round_.status_after = image.status
    round_.label_after_id = image.label_id
    round_.exclusion_reason_after = image.exclusion_reason
    # A round that ends in dispute (superseded by another) decided nothing.
    decided = image.status in (Image.Status.LABELED, Image.Status.EXCLUDED)
    before = (round_.status_before, round_.label_before_id)
    round_.changed = (image.status, image.label_id) != before if decided else None
    round_.save(update_fields=["closed_at", "status_after", "label_after", "exclusion_reason_after", "changed"])


@transaction.atomic
def rereview_request(*, requested_by, image_ids: list[int], reason: str = "") -> list[RereviewRound]:
    """Open a round for each image (labeled or disputed): pending again, for readers who have not reviewed,
    skipped or adjudicated it. All or nothing: excluded, pending or unknown images refuse the request, named."""
    if not user_has_role(requested_by, Role.CURATOR):
        raise PermissionDenied("Only curators send images for a fresh read.")
    ids = list(dict.fromkeys(image_ids))
    if not ids:
        raise ValidationError("Name at least one image.", code="invalid")
    if len(ids) > MAX_IMAGES_PER_REQUEST:
        raise ValidationError(f"At most {MAX_IMAGES_PER_REQUEST} images per request.", code="invalid")
    reason = (reason or "").strip()
    images = Image.objects.select_for_update().in_bulk(ids)
    missing = [image_id for image_id in ids if image_id not in images]
    if missing:
        raise ValidationError(f"There is no image {_listed(missing)}.", code="no_image")
    excluded = [image_id for image_id in ids if images[image_id].status == Image.Status.EXCLUDED]
    if excluded:
        raise ValidationError(
            f"Image{'s' if len(excluded) > 1 else ''} {_listed(excluded)} "
            f"{'are' if len(excluded) > 1 else 'is'} excluded: an excluded image is not read again.",
            code="excluded",
        )
    pending = [image_id for image_id in ids if images[image_id].status == Image.Status.PENDING]
    if pending:
        raise ValidationError(
            f"Image{'s' if len(pending) > 1 else ''} {_listed(pending)} "
            f"{'are' if len(pending) > 1 else 'is'} still being read.",
            code="pending",
        )
    rounds = []
    for image_id in ids:
        image = images[image_id]
        earlier = RereviewRound.objects.open().filter(image=image).first()
        if earlier is not None:
            # Decided meanwhile by an override, or in dispute after its readers disagreed: it ends as it stands.
            _close(earlier, image)
        round_ = RereviewRound.objects.create(
            image=image,
            requested_by=requested_by,
            reason=reason,
            status_before=image.status,
            label_before_id=image.label_id,
        )
        round_.excluded_readers.set(_seen_by(image))
        ReviewLease.objects.filter(image=image).delete()
        image_reopen(
            image=image,
            actor=requested_by,
            action="rereview_requested",
            reason=reason,
            note=f"re-review round {round_.pk}",
        )
        rounds.append(round_)
    return rounds


def rereview_round_decided(*, image: Image) -> None:
    """The image was decided (consensus or adjudication): its open round, if any, ends with that outcome."""
    round_ = RereviewRound.objects.open().filter(image=image).first()
    if round_ is not None and image.status in (Image.Status.LABELED, Image.Status.EXCLUDED):
        _close(round_, image)


def rereview_round_reopen(*, round_: RereviewRound | None) -> None:
    """An adjudication that closed the round was taken back: the round is open again."""
    if round_ is None or round_.closed_at is None:
        return
    round_.closed_at = None
    round_.status_after = ""
    round_.label_after = None
    round_.exclusion_reason_after = ""
    round_.changed = None
    round_.save(update_fields=["closed_at", "status_after", "label_after", "exclusion_reason_after", "changed"])
