"""What curators do with a suspected label error besides sending it back to readers: say the suggestion is wrong."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.services.audit import audit_record
from ml.models import LabelIssue


@transaction.atomic
def label_issue_dismiss(*, issue: LabelIssue, actor, reason: str = "") -> LabelIssue:
    """Mark the model's suggestion for this image wrong: the curated label stands. Kept in the audit log."""
    locked = LabelIssue.objects.select_for_update().select_related("label", "suggested").get(pk=issue.pk)
    if locked.dismissed_at is not None:
        raise ValidationError(f"The suggestion for image {locked.image_id} was already marked wrong.")
    locked.dismissed_at = timezone.now()
    locked.dismissed_by = actor
    locked.dismissed_reason = reason.strip()
    locked.save(update_fields=["dismissed_at", "dismissed_by", "dismissed_reason"])
    audit_record(
        actor=actor,
        action="label_issue_dismissed",
        target=f"label_issue:{locked.pk}",
        image_id=locked.image_id,
        before={"label": locked.label.code, "suggested": locked.suggested.code, "score": locked.score},
        after={"suggestion_wrong": True, "run": locked.run_id},
        reason=locked.dismissed_reason,
    )
    return locked
