"""Blind, then reveal: after their own decision, a reader may see the production model's top classes
(DERMCURATE_REVEAL_MODEL_SUGGESTION); never before. What the reader does next is kept."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.roles import READER_ROLES
from accounts.selectors import user_has_role
from core.services.audit import audit_record
from labeling.errors import ReviewConflict
from labeling.models import Review, SuggestionReveal
from ml.selectors.assist import production_suggestion

SUGGESTED_CLASSES = 3


@transaction.atomic
def review_suggestion_reveal(*, reader, image_id: int) -> SuggestionReveal | None:
    """The model's top classes for an image the reader has decided, recorded as shown; None when the production
    model has not scored the image (or there is none). Asking again returns what was shown."""
    if not user_has_role(reader, *READER_ROLES):
        raise PermissionDenied("Only reviewers and adjudicators see the model's suggestion, after their decision.")
    if not settings.DERMCURATE_REVEAL_MODEL_SUGGESTION:
        raise PermissionDenied("The model's suggestion is not shown to readers here.")
    review = Review.objects.active().filter(image_id=image_id, reader=reader).select_related("label").first()
    if review is None:
        raise ReviewConflict(
            f"Decide image {image_id} first: the model's suggestion comes only after your decision.",
            code="not_decided",
        )
    shown = SuggestionReveal.objects.filter(review=review).first()
    if shown is not None:
        return shown
    suggestion = production_suggestion(image_id, top_k=SUGGESTED_CLASSES)
    if suggestion is None:
        return None
    suggested = [{"code": code, "probability": probability} for code, probability in suggestion["classes"]]
    reveal = SuggestionReveal.objects.create(
        review=review,
        model_version_id=suggestion["model_version"],
        suggested=suggested,
        agreed=review.label_id is not None and review.label.code == suggested[0]["code"],
    )
    audit_record(
        actor=reader,
        action="suggestion_revealed",
        image_id=image_id,
        target=f"review:{review.pk}",
        after={"model_version": reveal.model_version_id, "suggested": [row["code"] for row in suggested]},
    )
    return reveal


def suggestion_reveal_follow(*, retracted: Review, review: Review) -> None:
    """The reader decided again (after an undo, or by a change) what they decided when the model's suggestion
    was shown: keep whether they changed their label, and whether to the model's."""
    reveal = SuggestionReveal.objects.filter(review=retracted, revised_by__isnull=True).first()
    if reveal is None:
        return
    reveal.revised_by = review
    reveal.label_changed = review.decision != retracted.decision
    reveal.changed_to_suggestion = (
        reveal.label_changed and review.label_id is not None and (review.label.code == reveal.top_code)
    )
    reveal.save(update_fields=["revised_by", "label_changed", "changed_to_suggestion"])
