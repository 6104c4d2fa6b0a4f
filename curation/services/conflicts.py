"""Exact duplicates whose sources disagree on the class: resolved one by one in adjudication, or many at
once by a curator's rule (prefer a folder or a source, or leave them out), audited."""

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet

from core.services.audit import audit_record
from curation.models import ExclusionReason, Image, ImageSource
from curation.services.images import image_exclude, image_set_label

SKIP = "skip"


def conflicts_open() -> QuerySet[Image]:
    """Images with conflicting source labels that have no final decision yet."""
    return Image.objects.with_conflicts().filter(status__in=[Image.Status.PENDING, Image.Status.DISPUTED])


@dataclass
class ConflictResolution:
    prefer: str
    labeled: list[int] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)
    left_open: list[int] = field(default_factory=list)  # the rule named none (or more than one) of their labels

    def as_dict(self) -> dict:
        return {
            "prefer": self.prefer,
            "labeled": len(self.labeled),
            "excluded": len(self.excluded),
            "left_open": self.left_open,
        }


def _matches(row: ImageSource, prefer: str) -> bool:
    wanted = prefer.casefold()
    folders = PurePosixPath(row.source_path).parts[:-1]
    return row.source.name.casefold() == wanted or any(folder.casefold() == wanted for folder in folders)


@transaction.atomic
def conflicts_resolve(*, prefer: str, actor) -> ConflictResolution:
    """Resolve every open conflict by a rule.

    `prefer` is a folder name or a source name: an image gets, as its final label, the label of its
    provenance rows in that folder or source (when they name exactly one class); `skip` excludes every
    conflicting image instead. Each change is audited; the rule itself is audited once.
    """
    prefer = (prefer or "").strip()
    if not prefer:
        raise ValidationError("Say which folder or source to prefer, or skip.")
    result = ConflictResolution(prefer=prefer)
    rows = ImageSource.objects.select_related("source", "source_label").order_by("pk")
    images = conflicts_open().select_for_update(of=("self",)).prefetch_related(Prefetch("provenance", queryset=rows))
    for image in images.order_by("pk"):
        if prefer.casefold() == SKIP:
            image_exclude(
                image=image,
                reason=ExclusionReason.OTHER,
                comment="conflicting source labels (resolve_conflicts --prefer skip)",
                actor=actor,
                action="conflict_excluded",
            )
            result.excluded.append(image.pk)
            continue
        labels = {row.source_label for row in image.provenance.all() if row.source_label_id and _matches(row, prefer)}
        if len(labels) != 1:
            result.left_open.append(image.pk)
            continue
        image_set_label(
            image=image, label=labels.pop(), actor=actor, action="conflict_resolved", note=f"prefer {prefer}"
        )
        result.labeled.append(image.pk)
    audit_record(
        actor=actor, action="conflicts_resolved", target="conflicts", after=result.as_dict(), reason=f"prefer {prefer}"
    )
    return result
