from django.db.models import Count, Prefetch, Q, QuerySet

from curation.models import DuplicateGroup, Image, ImageSource


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
