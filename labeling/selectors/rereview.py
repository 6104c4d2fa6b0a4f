from django.db.models import Count, Q, QuerySet

from labeling.models import RereviewRound

ROUND_STATES = {
    "open": Q(closed_at__isnull=True),
    "closed": Q(closed_at__isnull=False),
    "changed": Q(changed=True),
    "unchanged": Q(changed=False),
}


def rereview_round_list(*, state: str | None = None, image_id: int | None = None) -> QuerySet[RereviewRound]:
    rounds = RereviewRound.objects.select_related(
        "image", "image__label", "requested_by", "label_before", "label_after"
    ).order_by("-created_at", "-pk")
    if state:
        rounds = rounds.filter(ROUND_STATES[state])
    if image_id is not None:
        rounds = rounds.filter(image_id=image_id)
    return rounds


def rereview_outcomes() -> dict[str, int]:
    """How many rounds were asked for, are still open, ended, and of those changed the decision or kept it."""
    counts = RereviewRound.objects.aggregate(
        requested=Count("pk"),
        **{f"rounds_{state}": Count("pk", filter=condition) for state, condition in ROUND_STATES.items()},
    )
    return {name.removeprefix("rounds_"): count for name, count in counts.items()}
