from django.db.models import Count, Prefetch, Q, QuerySet

from curation.models import DuplicateGroup, DuplicatePair, Image, ImageSource


def duplicate_group_list(*, open_only: bool = False) -> QuerySet[DuplicateGroup]:
    """Groups with their members (labels, sources, sizes) in a constant number of queries.

    A group is open while two or more of its members are not excluded.
    """
    members = (
        Image.objects.select_related("label", "source_label")
        .prefetch_related(Prefetch("provenance", queryset=ImageSource.objects.select_related("source", "source_label")))
        .order_by("pk")
    )
    groups = (
        DuplicateGroup.objects.annotate(
            size=Count("images"), kept=Count("images", filter=~Q(images__status=Image.Status.EXCLUDED))
        )
        .prefetch_related(Prefetch("images", queryset=members))
        .order_by("pk")
    )
    if open_only:
        groups = groups.filter(kept__gte=2)
    return groups


def duplicate_group_next_open(*, after: int) -> DuplicateGroup | None:
    """The first open group after group `after` (by id), else the first open one before it."""
    groups = duplicate_group_list(open_only=True)
    return groups.filter(pk__gt=after).first() or groups.exclude(pk=after).first()


def duplicate_group_compare(group: DuplicateGroup) -> dict:
    """A group as the compare screen shows it: its members (largest first) and every pair's distances."""
    from curation.dedup import hamming_distance

    members = sorted(group.images.all(), key=lambda image: (-(image.width * image.height), image.pk))
    ids = [image.pk for image in members]
    similarity = {
        (low, high): score
        for low, high, score in DuplicatePair.objects.filter(image_low_id__in=ids, image_high_id__in=ids).values_list(
            "image_low_id", "image_high_id", "similarity"
        )
    }
    pairs = []
    for position, first in enumerate(members):
        for second in members[position + 1 :]:
            low, high = sorted((first.pk, second.pk))
            pairs.append(
                {
                    "images": (first.pk, second.pk),
                    "phash": hamming_distance(first.phash, second.phash),
                    "dhash": hamming_distance(first.dhash, second.dhash),
                    "similarity": similarity.get((low, high)),
                }
            )
    return {"group": group, "members": members, "pairs": pairs, "keep": members[0] if members else None}
