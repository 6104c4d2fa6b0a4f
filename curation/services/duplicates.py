"""Near-duplicate groups: pHash within a threshold, joined by connected components."""

import time
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from core.services.audit import audit_record
from curation.models import DuplicateGroup, ExclusionReason, Image, NotDuplicateDecision
from curation.services.images import image_exclude


@dataclass(frozen=True)
class DuplicateRefreshResult:
    threshold: int
    images: int
    groups: int
    images_in_groups: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "images": self.images,
            "groups": self.groups,
            "images_in_groups": self.images_in_groups,
            "seconds": round(self.seconds, 3),
        }


def duplicates_refresh(*, threshold: int | None = None) -> DuplicateRefreshResult:
    """Recompute every duplicate group; curators' decisions are kept.

    A group keeps its id when most of its members stay together, so pages
    and snapshots that name a group keep meaning the same images.
    """
    import numpy as np  # numpy and scipy load only where duplicates are computed, not in every web process

    from curation import dedup

    started = time.monotonic()
    threshold = settings.DERMCURATE_NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold
    if not 0 <= threshold <= 32:
        raise ValidationError(f"The threshold must be between 0 and 32 bits, got {threshold}.")
    with transaction.atomic():
        rows = list(Image.objects.order_by("pk").values_list("pk", "phash", "dhash", "duplicate_group_id"))
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        position = {int(image_id): index for index, image_id in enumerate(ids)}
        not_duplicates = {
            (position[low], position[high])
            for low, high in NotDuplicateDecision.objects.values_list("image_low_id", "image_high_id")
        }
        confirm_threshold = settings.DERMCURATE_DHASH_CONFIRM_THRESHOLD
        if confirm_threshold is not None and confirm_threshold < 0:
            confirm_threshold = None
        groups = dedup.duplicate_groups(
            np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows)),
            threshold,
            excluded_pairs=not_duplicates,
            confirm=None if confirm_threshold is None else np.fromiter((r[2] for r in rows), np.int64, len(rows)),
            confirm_threshold=confirm_threshold,
        )
        old_group = {row[0]: row[3] for row in rows}
        new_group = _assign_group_ids([ids[members].tolist() for members in groups], old_group)
        changed: dict[int | None, list[int]] = {}
        for image_id, group_id in old_group.items():
            if new_group.get(image_id) != group_id:
                changed.setdefault(new_group.get(image_id), []).append(image_id)
        for group_id, image_ids in changed.items():
            Image.objects.filter(pk__in=image_ids).update(duplicate_group_id=group_id)
        DuplicateGroup.objects.exclude(pk__in=set(new_group.values())).delete()
    return DuplicateRefreshResult(
        threshold=threshold,
        images=len(rows),
        groups=len(groups),
        images_in_groups=sum(len(g) for g in groups),
        seconds=time.monotonic() - started,
    )


def _assign_group_ids(groups: list[list[int]], old_group: dict[int, int | None]) -> dict[int, int]:
    """Reuse the id most members had before; a new group gets a new id."""
    used: set[int] = set()
    assignment: dict[int, int] = {}
    for members in sorted(groups, key=len, reverse=True):
        votes = Counter(old_group[m] for m in members if old_group[m] is not None)
        group_id = next((g for g, _ in votes.most_common() if g not in used), None)
        if group_id is None:
            group_id = DuplicateGroup.objects.create().pk
        used.add(group_id)
        assignment.update(dict.fromkeys(members, group_id))
    return assignment


@transaction.atomic
def duplicate_group_mark_not_duplicates(*, group: DuplicateGroup, actor, image: Image | None = None) -> int:
    """A curator says: these are not duplicates (all of them, or `image` against the rest).

    The verdict is stored per pair, so it survives every later re-run.
    Returns the number of pairs recorded.
    """
    members = list(group.images.values_list("pk", flat=True))
    if image is not None and image.pk not in members:
        raise ValidationError(f"Image {image.pk} is not in duplicate group {group.pk}.")
    if image is None:
        pairs = list(combinations(sorted(members), 2))
    else:
        pairs = [tuple(sorted((image.pk, other))) for other in members if other != image.pk]
    NotDuplicateDecision.objects.bulk_create(
        [NotDuplicateDecision(image_low_id=low, image_high_id=high, decided_by=actor) for low, high in pairs],
        ignore_conflicts=True,
    )
    _audit_group(actor=actor, action="duplicates_not_duplicates", group=group, members=members, image=image)
    duplicates_refresh()
    return len(pairs)


@transaction.atomic
def duplicate_group_keep_one(*, group: DuplicateGroup, keep: Image, actor) -> list[Image]:
    """Keep `keep`, exclude the other members with the reason `duplicate`."""
    members = list(group.images.select_for_update().order_by("pk"))
    if keep.pk not in {member.pk for member in members}:
        raise ValidationError(f"Image {keep.pk} is not in duplicate group {group.pk}.")
    excluded = []
    for member in members:
        if member.pk != keep.pk and member.status != Image.Status.EXCLUDED:
            excluded.append(
                image_exclude(
                    image=member,
                    reason=ExclusionReason.DUPLICATE,
                    actor=actor,
                    comment=f"duplicate of image {keep.pk}",
                    action="duplicate_excluded",
                )
            )
    return excluded


def _audit_group(*, actor, action: str, group: DuplicateGroup, members: list[int], image: Image | None) -> None:
    audit_record(
        actor=actor,
        action=action,
        image_id=image.pk if image else None,
        target=f"duplicate_group:{group.pk}",
        before={"members": members},
        after={"not_duplicates": [image.pk] if image else members},
    )
