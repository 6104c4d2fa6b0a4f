"""Reviews: one blind decision per reader per image, undo, and adjudication."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import READER_ROLES, Role
from accounts.selectors import user_has_role
from core.services.audit import audit_record
from curation.models import Image, LabelClass
from curation.services.images import image_exclude, image_set_label
from labeling.models import Adjudication, CannotJudgeReason, Review, ReviewLease
from labeling.services.consensus import consensus_evaluate
from labeling.services.queue import review_lease_take


def _decision_fields(*, label_code: str | None, cannot_judge: bool, reason: str, comment: str) -> dict:
    """Validate "a class" or "cannot judge + reason"; returns the model fields."""
    comment = (comment or "").strip()
    if cannot_judge:
        if label_code:
            raise ValidationError("Give either a class or cannot_judge, not both.")
        if not reason:
            known = ", ".join(CannotJudgeReason.values)
            raise ValidationError(f"Cannot judge needs a reason: one of {known}.")
        if reason not in CannotJudgeReason.values:
            raise ValidationError(f"Unknown reason {reason!r}. Known: {', '.join(CannotJudgeReason.values)}.")
        if reason == CannotJudgeReason.OTHER and not comment:
            raise ValidationError("The reason 'other' needs a comment.")
        return {"label": None, "reason": reason, "comment": comment}
    if not label_code:
        raise ValidationError("Give a class code, or cannot_judge with a reason.")
    label = LabelClass.objects.filter(code=label_code).first()
    if label is None:
        known = ", ".join(LabelClass.objects.order_by("index").values_list("code", flat=True))
        raise ValidationError(f"Unknown class code {label_code!r}. Known: {known}.")
    if reason:
        raise ValidationError("A reason goes with cannot_judge only.")
    return {"label": label, "reason": "", "comment": comment}


def _locked_image(image_id: int) -> Image:
    try:
        return Image.objects.select_for_update().get(pk=image_id)
    except Image.DoesNotExist:
        raise ValidationError(f"There is no image {image_id}.") from None


def _review_state(review: Review) -> dict:
    return {
        "review": review.pk,
        "label": review.label.code if review.label_id else None,
        "reason": review.reason,
        "comment": review.comment,
        "seconds_spent": review.seconds_spent,
    }


@transaction.atomic
def review_submit(
    *,
    reader,
    image_id: int,
    label_code: str | None = None,
    cannot_judge: bool = False,
    reason: str = "",
    comment: str = "",
    seconds_spent: float | None = None,
) -> Review:
    """Record the reader's decision on an image that still needs reviews, then apply consensus.

    The image row is locked, so concurrent readers are serialized: no review is
    lost or doubled, and consensus sees every review.
    """
    if not user_has_role(reader, *READER_ROLES):
        raise PermissionDenied("Only reviewers and adjudicators review images.")
    fields = _decision_fields(label_code=label_code, cannot_judge=cannot_judge, reason=reason, comment=comment)
    if seconds_spent is not None and not 0 <= seconds_spent < 24 * 3600:
        raise ValidationError("seconds_spent must be between 0 and 86400.")
    image = _locked_image(image_id)
    if image.status == Image.Status.EXCLUDED:
        raise ValidationError(f"Image {image.pk} is excluded ({image.exclusion_reason}); it needs no review.")
    if image.status != Image.Status.PENDING:
        raise ValidationError(f"Image {image.pk} is already decided ({image.status}); it needs no more reviews.")
    if Review.objects.active().filter(image=image, reader=reader).exists():
        raise ValidationError(f"You have already reviewed image {image.pk}.")
    try:
        with transaction.atomic():
            review = Review.objects.create(image=image, reader=reader, seconds_spent=seconds_spent, **fields)
    except IntegrityError:
        raise ValidationError(f"You have already reviewed image {image.pk}.") from None
    ReviewLease.objects.filter(image=image, reader=reader).delete()
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


def _undoable(reader) -> Review:
    window = timedelta(seconds=settings.DERMCURATE_UNDO_SECONDS)
    review = (
        Review.objects.active().filter(reader=reader).select_related("label").order_by("-created_at", "-pk").first()
    )
    if review is None:
        raise ValidationError("There is no review of yours to undo.")
    if timezone.now() - review.created_at > window:
        raise ValidationError(
            f"Your last review is older than {window.seconds // 60} minutes and can no longer be undone."
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
            f"Image {image.pk} is already decided ({image.status}) with your review; it cannot be undone."
        )
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
    review_lease_take(reader=reader, image=image)
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
        raise ValidationError(f"Image {image.pk} is not in dispute ({image.status}).")
    adjudication = Adjudication.objects.create(
        image=image, adjudicator=adjudicator, label=fields["label"], reason=fields["reason"], note=fields["comment"]
    )
    if adjudication.label_id:
        image_set_label(image=image, label=adjudication.label, actor=adjudicator, action="adjudication", note=note)
    else:
        image_exclude(image=image, reason=adjudication.reason, comment=note, actor=adjudicator, action="adjudication")
    return adjudication
