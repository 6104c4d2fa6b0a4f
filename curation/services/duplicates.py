"""Near-duplicate groups: verified pairs of near copies, grouped by complete linkage (no chaining).

An import verifies only its new images' candidates against everything stored (DuplicatePair rows
keep what was verified); the groups are then recomputed from all verified pairs, keeping
curators' decisions. See curation.dedup for the method and bench/RESULTS.md for its figures.
"""

import io
import logging
import time
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from core.services.audit import audit_record
from curation.models import DuplicateGroup, DuplicatePair, ExclusionReason, Image, NotDuplicateDecision
from curation.services.images import image_exclude

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicateRefreshResult:
    threshold: int
    images: int
    checked: int
    candidates: int
    verified_pairs: int
    groups: int
    images_in_groups: int
    largest_group: int
    seconds: float

    def as_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "images": self.images,
            "checked": self.checked,
            "candidates": self.candidates,
            "verified_pairs": self.verified_pairs,
            "groups": self.groups,
            "images_in_groups": self.images_in_groups,
            "largest_group": self.largest_group,
            "seconds": round(self.seconds, 3),
        }


def _fingerprint_from_file(image: Image) -> bytes:
    """The fingerprint of an image stored before fingerprints were kept, from its served copy."""
    from PIL import Image as PILImage

    from curation.imaging import image_fingerprint

    try:
        with image.sanitized.open("rb") as handle:
            return image_fingerprint(PILImage.open(io.BytesIO(handle.read())).convert("L"))
    except (OSError, ValueError):
        logger.warning("image %s has no readable served copy; it is left out of duplicate search", image.pk)
        return b""


def _backfill_fingerprints() -> None:
    for image in Image.objects.filter(fingerprint=b"").only("pk", "sanitized").iterator(chunk_size=500):
        fingerprint = _fingerprint_from_file(image)
        if fingerprint:
            Image.objects.filter(pk=image.pk).update(fingerprint=fingerprint)


def duplicates_refresh(*, threshold: int | None = None, full: bool = False) -> DuplicateRefreshResult:
    """Verify the candidates of images not checked yet (all of them with `full`, or a `threshold`),
    then recompute every duplicate group from the verified pairs; curators' decisions are kept.

    Candidates come from fingerprint embeddings, and from pHashes within `threshold` bits
    (DERMCURATE_NEAR_DUPLICATE_THRESHOLD). A group keeps its id when most of its members stay
    together, so pages and snapshots that name a group keep meaning the same images.
    """
    import numpy as np  # numpy and scipy load only where duplicates are computed, not in every web process

    from curation import dedup

    started = time.monotonic()
    full = full or threshold is not None
    threshold = settings.DERMCURATE_NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold
    if not 0 <= threshold <= 32:
        raise ValidationError(f"The threshold must be between 0 and 32 bits, got {threshold}.")
    _backfill_fingerprints()
    rows = list(
        Image.objects.exclude(fingerprint=b"").order_by("pk").values_list("pk", "phash", "fingerprint", "dedup_checked")
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    fingerprints = dedup.as_fingerprints([row[2] for row in rows])
    new = np.flatnonzero([full or not row[3] for row in rows])
    candidates = np.empty((0, 2), dtype=np.int64)
    if len(new) and len(rows) > 1:
        candidates = dedup.candidate_pairs(dedup.fingerprint_embeddings(fingerprints), new=new)
        phashes = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        close = dedup.near_duplicate_pairs(phashes, threshold)
        is_new = np.zeros(len(rows), dtype=bool)
        is_new[new] = True
        close = close[is_new[close[:, 0]] | is_new[close[:, 1]]]
        candidates = np.unique(np.concatenate([candidates, close]), axis=0)
    scores = dedup.pair_similarities(fingerprints, candidates)
    verified = scores >= dedup.VERIFIED_MIN_SIMILARITY
    with transaction.atomic():
        if full:
            DuplicatePair.objects.all().delete()
        DuplicatePair.objects.bulk_create(
            [
                DuplicatePair(image_low_id=int(ids[i]), image_high_id=int(ids[j]), similarity=float(score))
                for (i, j), score in zip(candidates[verified].tolist(), scores[verified].tolist(), strict=True)
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
        Image.objects.filter(pk__in=ids[new].tolist(), dedup_checked=False).update(dedup_checked=True)
        groups = duplicate_groups_recompute()
    return DuplicateRefreshResult(
        threshold=threshold,
        images=len(rows),
        checked=len(new),
        candidates=len(candidates),
        verified_pairs=DuplicatePair.objects.count(),
        groups=len(groups),
        images_in_groups=sum(len(g) for g in groups),
        largest_group=max((len(g) for g in groups), default=0),
        seconds=time.monotonic() - started,
    )


def duplicate_groups_recompute() -> list[list[int]]:
    """Groups by complete linkage over the verified pairs, without the pairs curators called not the same."""
    import numpy as np

    from curation import dedup

    pairs = list(DuplicatePair.objects.values_list("image_low_id", "image_high_id", "similarity"))
    not_duplicates = set(NotDuplicateDecision.objects.values_list("image_low_id", "image_high_id"))
    image_ids = sorted({i for pair in pairs for i in pair[:2]})
    position = {image_id: index for index, image_id in enumerate(image_ids)}
    index_pairs = np.array([(position[low], position[high]) for low, high, _ in pairs], dtype=np.int64).reshape(-1, 2)
    excluded = {(position[low], position[high]) for low, high in not_duplicates if low in position and high in position}
    found = dedup.complete_linkage_groups(
        len(image_ids), index_pairs, np.array([score for _, _, score in pairs]), excluded_pairs=excluded
    )
    groups = [[image_ids[index] for index in members.tolist()] for members in found]
    old_group = dict(Image.objects.exclude(duplicate_group=None).values_list("pk", "duplicate_group_id"))
    for members in groups:
        for member in members:
            old_group.setdefault(member, None)
    new_group = _assign_group_ids(groups, old_group)
    changed: dict[int | None, list[int]] = {}
    for image_id, group_id in old_group.items():
        if new_group.get(image_id) != group_id:
            changed.setdefault(new_group.get(image_id), []).append(image_id)
    for group_id, members in changed.items():
        Image.objects.filter(pk__in=members).update(duplicate_group_id=group_id)
    DuplicateGroup.objects.exclude(pk__in=set(new_group.values())).delete()
    return groups


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
    duplicate_groups_recompute()
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
