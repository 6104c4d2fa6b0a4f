"""Reviews: one blind decision per reader per image, bound to the image the reader was given;
changes from the reader's history, undo, and adjudication (with its own undo)."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import READER_ROLES, Role
from accounts.selectors import user_has_role
from core.services.audit import audit_record
from curation.models import Image, LabelClass
from curation.services.images import image_exclude, image_mark_disputed, image_set_label
from labeling.errors import NOT_IN_QUEUE, ReviewConflict
from labeling.models import Adjudication, CannotJudgeReason, Confidence, Review, ReviewLease
from labeling.services.consensus import consensus_evaluate
from labeling.services.queue import review_lease_take
from labeling.services.rereview import rereview_round_current, rereview_round_decided, rereview_round_reopen
from labeling.services.suggestions import suggestion_reveal_follow


def _decision_fields(*, label_code: str | None, cannot_judge: bool, reason: str, comment: str) -> dict:
    """Validate "a class" or "cannot judge + reason"; returns the model fields."""
    comment = (comment or "").strip()
    if cannot_judge:
        if label_code:
            raise ValidationError("Give either a class or cannot_judge, not both.", code="invalid")
        if not reason:
            known = ", ".join(CannotJudgeReason.values)
            raise ValidationError(f"Cannot judge needs a reason: one of {known}.", code="invalid")
        if reason not in CannotJudgeReason.values:
            known = ", ".join(CannotJudgeReason.values)
            raise ValidationError(f"Unknown reason {reason!r}. Known: {known}.", code="invalid")
        if reason == CannotJudgeReason.OTHER and not comment:
            raise ValidationError("The reason 'other' needs a comment.", code="invalid")
        return {"label": None, "reason": reason, "comment": comment}
    if not label_code:
        raise ValidationError("Give a class code, or cannot_judge with a reason.", code="invalid")
    label = LabelClass.objects.filter(code=label_code).first()
    if label is None:
        known = ", ".join(LabelClass.objects.order_by("index").values_list("code", flat=True))
        raise ValidationError(f"Unknown class code {label_code!r}. Known: {known}.", code="invalid")
    if reason:
        raise ValidationError("A reason goes with cannot_judge only.", code="invalid")
    return {"label": label, "reason": "", "comment": comment}


def _check_common(*, reader, confidence: str, seconds_spent: float | None) -> None:
    if not user_has_role(reader, *READER_ROLES):
        raise PermissionDenied("Only reviewers and adjudicators review images.")
    if confidence not in Confidence.values:
        raise ValidationError(f"Confidence is one of {', '.join(Confidence.values)}.", code="invalid")
    if seconds_spent is not None and not 0 <= seconds_spent < 24 * 3600:
        raise ValidationError("seconds_spent must be between 0 and 86400.", code="invalid")


def _locked_image(image_id: int) -> Image:
    try:
        return Image.objects.select_for_update().get(pk=image_id)
    except Image.DoesNotExist:
        raise ValidationError(f"There is no image {image_id}.", code="no_image") from None


def _review_state(review: Review) -> dict:
    return {
        "review": review.pk,
        "label": review.label.code if review.label_id else None,
        "reason": review.reason,
        "comment": review.comment,
        "confidence": review.confidence,
        "seconds_spent": review.seconds_spent,
    }


def _check_in_current_read(review: Review, image: Image) -> None:
    """A decision from before a re-review round stays as it was: the round is other readers' fresh read."""
    current = rereview_round_current(image)
    if review.round_id != (current.pk if current else None):
        raise ValidationError(
            f"Image {image.pk} is being read again by other readers; your earlier decision stays as it was.",
            code="decided",
        )


def _check_reviewable(image: Image) -> None:
    if image.status == Image.Status.EXCLUDED:
        raise ValidationError(f"Image {image.pk} is excluded; it needs no review.", code="decided")
    if image.status != Image.Status.PENDING:
        raise ValidationError(f"Image {image.pk} is already decided; it needs no more reviews.", code="decided")


@transaction.atomic
def review_submit(
    *,
    reader,
    image_id: int,
    label_code: str | None = None,
    cannot_judge: bool = False,
    reason: str = "",
    comment: str = "",
    confidence: str = Confidence.SURE,
    seconds_spent: float | None = None,
) -> Review:
    """Record the reader's decision on the image they were given, then apply consensus.

    The decision names its image and is accepted only while the reader holds that
    image's lease (given by the queue, or by reopening a skipped image): nobody
    decides an image they were not given, so readers cannot pick images together.
    A lease that expired is still the reader's until the queue gives the image
    to someone else (that replaces the lease row).

    The image row is locked, so concurrent readers are serialized: no review is
    lost or doubled, and consensus sees every review.
    """
    _check_common(reader=reader, confidence=confidence, seconds_spent=seconds_spent)
    fields = _decision_fields(label_code=label_code, cannot_judge=cannot_judge, reason=reason, comment=comment)
    image = _locked_image(image_id)
    if not ReviewLease.objects.filter(image=image, reader=reader).exists():
        raise ReviewConflict(NOT_IN_QUEUE, code="not_in_queue")
    _check_reviewable(image)
    if Review.objects.active().filter(image=image, reader=reader).exists():
        raise ValidationError(f"You have already reviewed image {image.pk}.", code="already_reviewed")
    try:
        with transaction.atomic():
            review = Review.objects.create(
                image=image,
                reader=reader,
                seconds_spent=seconds_spent,
                confidence=confidence,
                round=rereview_round_current(image),
                **fields,
            )
    except IntegrityError:
        raise ValidationError(f"You have already reviewed image {image.pk}.", code="already_reviewed") from None
    ReviewLease.objects.filter(image=image, reader=reader).delete()
    undone_after_suggestion = (
        Review.objects.filter(
            image=image,
            reader=reader,
            retracted_at__isnull=False,
            suggestion_reveal__isnull=False,
            suggestion_reveal__revised_by__isnull=True,
        )
        .order_by("-retracted_at", "-pk")
        .first()
    )
    if undone_after_suggestion is not None:
        suggestion_reveal_follow(retracted=undone_after_suggestion, review=review)
    audit_record(
        actor=reader,
        action="review",
        image_id=image.pk,
        target=f"review:{review.pk}",
        before={},
        after=_review_state(review),
    )
    consensus_evaluate(image=image, actor=reader)
    return review


@transaction.atomic
def review_change(
    *,
    reader,
    image_id: int,
    label_code: str | None = None,
    cannot_judge: bool = False,
    reason: str = "",
    comment: str = "",
    confidence: str = Confidence.SURE,
    seconds_spent: float | None = None,
) -> Review:
    """Change the reader's own decision (opened from their history) while the image is pending.

    Once consensus has been taken the image is decided and the decision stays; the
    reader is told only that it is decided, never whether the readers agreed. The
    old review is retracted and the new one points back to it, so the change is
    kept and audited and the reader still has one review of the image.
    """
    _check_common(reader=reader, confidence=confidence, seconds_spent=seconds_spent)
    fields = _decision_fields(label_code=label_code, cannot_judge=cannot_judge, reason=reason, comment=comment)
    image = _locked_image(image_id)
    old = Review.objects.active().filter(image=image, reader=reader).select_related("label").first()
    if old is None:
        raise ReviewConflict(f"You have no decision on image {image.pk} to change.", code="not_yours")
    if image.status != Image.Status.PENDING:
        raise ValidationError(
            f"Image {image.pk} is already decided; your decision can no longer be changed.", code="decided"
        )
    _check_in_current_read(old, image)
    unchanged = (old.label_id, old.reason, old.comment, old.confidence) == (
        fields["label"].pk if fields["label"] else None,
        fields["reason"],
        fields["comment"],
        confidence,
    )
    if unchanged:
        return old
    old.retracted_at = timezone.now()
    old.save(update_fields=["retracted_at"])
    spent = [value for value in (old.seconds_spent, seconds_spent) if value is not None]
    review = Review.objects.create(
        image=image,
        reader=reader,
        round=old.round,
        replaces=old,
        confidence=confidence,
        seconds_spent=sum(spent) if spent else None,
        **fields,
    )
    suggestion_reveal_follow(retracted=old, review=review)
    audit_record(
        actor=reader,
        action="review_changed",
        image_id=image.pk,
        target=f"review:{review.pk}",
        before=_review_state(old),
        after=_review_state(review),
    )
    return review


def _undoable(reader) -> Review:
    window = timedelta(seconds=settings.DERMCURATE_UNDO_SECONDS)
    review = (
        Review.objects.active().filter(reader=reader).select_related("label").order_by("-created_at", "-pk").first()
    )
    if review is None:
        raise ValidationError("There is no review of yours to undo.", code="nothing_to_undo")
    if timezone.now() - review.created_at > window:
        raise ValidationError(
            f"Your last review is older than {window.seconds // 60} minutes and can no longer be undone.",
            code="too_late",
        )
    return review


@transaction.atomic
def review_undo(*, reader) -> Review:
    """Retract the reader's last review, if recent and no consensus has used it; the image
    comes back to them."""
    review = _undoable(reader)
    image = _locked_image(review.image_id)
    if image.status != Image.Status.PENDING:
        raise ValidationError(
            f"Image {image.pk} is already decided with your review; it cannot be undone.", code="decided"
        )
    _check_in_current_read(review, image)
    review.retracted_at = timezone.now()
    review.save(update_fields=["retracted_at"])
    audit_record(
        actor=reader,
        action="review_undone",
        image_id=image.pk,
        target=f"review:{review.pk}",
        before=_review_state(review),
        after={"retracted": True},
    )
    if review_lease_take(reader=reader, image=image) is None:
        # The decision must be bound to a lease; rolled back, the review stays as it was.
        raise ReviewConflict(
            f"Another reader has image {image.pk} open just now; change your decision from My reviews instead.",
            code="held_by_other",
        )
    return review


@transaction.atomic
def adjudication_submit(
    *,
    adjudicator,
    image_id: int,
    label_code: str | None = None,
    cannot_judge: bool = False,
    reason: str = "",
    note: str = "",
) -> Adjudication:
    """A senior reader decides a disputed image; stored apart from the reviews."""
    if not user_has_role(adjudicator, Role.ADJUDICATOR):
        raise PermissionDenied("Only adjudicators decide disputed images.")
    fields = _decision_fields(label_code=label_code, cannot_judge=cannot_judge, reason=reason, comment=note)
    image = _locked_image(image_id)
    if image.status != Image.Status.DISPUTED:
        raise ValidationError(f"Image {image.pk} is not in dispute ({image.status}).", code="not_disputed")
    adjudication = Adjudication.objects.create(
        image=image,
        adjudicator=adjudicator,
        round=rereview_round_current(image),
        label=fields["label"],
        reason=fields["reason"],
        note=fields["comment"],
    )
    if adjudication.label_id:
        image_set_label(image=image, label=adjudication.label, actor=adjudicator, action="adjudication", note=note)
    else:
        image_exclude(image=image, reason=adjudication.reason, comment=note, actor=adjudicator, action="adjudication")
    rereview_round_decided(image=image)
    return adjudication


def _adjudication_state(adjudication: Adjudication) -> dict:
    return {
        "adjudication": adjudication.pk,
        "label": adjudication.label.code if adjudication.label_id else None,
        "reason": adjudication.reason,
        "note": adjudication.note,
    }


@transaction.atomic
def adjudication_undo(*, adjudicator, image_id: int) -> Image:
    """Take back one's own adjudication within the undo window; the image is in dispute again.

    Refused once anyone changed the image since (a curator's override); the audit
    log keeps the adjudication that was taken back.
    """
    if not user_has_role(adjudicator, Role.ADJUDICATOR):
        raise PermissionDenied("Only adjudicators decide disputed images.")
    image = _locked_image(image_id)
    current = rereview_round_current(image)
    adjudication = Adjudication.objects.filter(image=image, round=current).select_related("label").first()
    if adjudication is None or adjudication.adjudicator_id != adjudicator.pk:
        raise ValidationError(f"You have no adjudication of image {image.pk} to undo.", code="nothing_to_undo")
    window = timedelta(seconds=settings.DERMCURATE_UNDO_SECONDS)
    if timezone.now() - adjudication.created_at > window:
        raise ValidationError(
            f"Your adjudication of image {image.pk} is older than {window.seconds // 60} minutes "
            "and can no longer be undone.",
            code="too_late",
        )
    as_decided = (image.label_id, image.exclusion_reason) == (adjudication.label_id, adjudication.reason)
    if image.status not in (Image.Status.LABELED, Image.Status.EXCLUDED) or not as_decided:
        raise ValidationError(f"Image {image.pk} was changed after your adjudication.", code="changed")
    audit_record(
        actor=adjudicator,
        action="adjudication_undone",
        image_id=image.pk,
        target=f"adjudication:{adjudication.pk}",
        before=_adjudication_state(adjudication),
        after={},
    )
    adjudication.delete()
    rereview_round_reopen(round_=current)
    return image_mark_disputed(image=image, actor=adjudicator, action="adjudication_undone")
