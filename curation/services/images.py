"""The curated state of an image: labeled, excluded, disputed — always audited."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.services.audit import audit_record
from curation.models import ExclusionReason, Image, LabelClass


def image_state(image: Image) -> dict:
    return {
        "status": image.status,
        "label": image.label.code if image.label_id else None,
        "exclusion_reason": image.exclusion_reason,
    }


def _save_state(*, image: Image, actor, action: str, before: dict, note: str = "", reason: str = "") -> Image:
    image.save(update_fields=["status", "label", "exclusion_reason", "exclusion_comment", "decided_at"])
    after = image_state(image)
    if note:
        after["note"] = note
    audit_record(
        actor=actor,
        action=action,
        image_id=image.pk,
        target=f"image:{image.pk}",
        before=before,
        after=after,
        reason=reason,
    )
    return image


@transaction.atomic
def image_set_label(*, image: Image, label: LabelClass, actor, action: str, note: str = "", reason: str = "") -> Image:
    """Give an image its final class (consensus, adjudication, trusted source, curator override)."""
    before = image_state(image)
    image.status = Image.Status.LABELED
    image.label = label
    image.exclusion_reason = ""
    image.exclusion_comment = ""
    image.decided_at = timezone.now()
    return _save_state(image=image, actor=actor, action=action, before=before, note=note, reason=reason)


@transaction.atomic
def image_exclude(*, image: Image, reason: str, actor, action: str, comment: str = "", why: str = "") -> Image:
    """Leave an image out of every future snapshot, with the reason."""
    if reason not in ExclusionReason.values:
        raise ValidationError(f"Unknown exclusion reason {reason!r}. Known: {', '.join(ExclusionReason.values)}.")
    if reason == ExclusionReason.OTHER and not comment.strip():
        raise ValidationError("The reason 'other' needs a comment.")
    before = image_state(image)
    image.status = Image.Status.EXCLUDED
    image.label = None
    image.exclusion_reason = reason
    image.exclusion_comment = comment.strip()
    image.decided_at = timezone.now()
    return _save_state(image=image, actor=actor, action=action, before=before, reason=why)


@transaction.atomic
def image_mark_disputed(*, image: Image, actor, action: str = "disputed") -> Image:
    before = image_state(image)
    image.status = Image.Status.DISPUTED
    image.label = None
    image.exclusion_reason = ""
    image.exclusion_comment = ""
    image.decided_at = None
    return _save_state(image=image, actor=actor, action=action, before=before)


@transaction.atomic
def image_reopen(*, image: Image, actor, action: str, reason: str = "", note: str = "") -> Image:
    """Send a labeled or disputed image back to pending, for readers to read it again; the label it had stays
    in the audit log. An excluded image is not read again."""
    if image.status not in (Image.Status.LABELED, Image.Status.DISPUTED):
        raise ValidationError(f"Image {image.pk} is {image.status}; only a labeled or disputed image is read again.")
    before = image_state(image)
    image.status = Image.Status.PENDING
    image.label = None
    image.exclusion_reason = ""
    image.exclusion_comment = ""
    image.decided_at = None
    return _save_state(image=image, actor=actor, action=action, before=before, note=note, reason=reason)


@transaction.atomic
def image_override(
    *,
    image: Image,
    actor,
    reason: str,
    label_code: str | None = None,
    exclusion_reason: str | None = None,
    comment: str = "",
) -> Image:
    """A curator sets an image's final class, or excludes it, whatever the readers said.

    The curator says why (`reason`, kept in the audit log); `comment` is the
    exclusion's own comment, needed for the reason "other" (the why serves when empty).
    """
    image = Image.objects.select_for_update().get(pk=image.pk)
    if bool(label_code) == bool(exclusion_reason):
        raise ValidationError("Give either a class or an exclusion reason.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why you override the readers: the reason goes in the audit log.")
    if exclusion_reason:
        return image_exclude(
            image=image,
            reason=exclusion_reason,
            comment=comment or reason,
            actor=actor,
            action="curator_override",
            why=reason,
        )
    label = LabelClass.objects.filter(code=label_code).first()
    if label is None:
        raise ValidationError(f"Unknown class code {label_code!r}.")
    return image_set_label(
        image=image, label=label, actor=actor, action="curator_override", note=comment, reason=reason
    )
