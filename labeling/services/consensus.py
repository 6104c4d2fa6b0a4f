"""Consensus: with the required number of readers in, agree → final, disagree → disputed."""

from collections import Counter

from django.conf import settings
from django.db import transaction

from curation.models import Image, ImageSource, LabelClass
from curation.services.images import image_exclude, image_mark_disputed, image_set_label
from labeling.models import RereviewRound, Review
from labeling.services.rereview import rereview_round_current, rereview_round_decided

CANNOT_JUDGE = "cannot_judge"


def trusted_votes(image_ids: list[int]) -> dict[int, list[str]]:
    """Class codes that trusted sources give each image: each counts as one agreeing reader."""
    votes: dict[int, set[tuple[int, str]]] = {}
    rows = ImageSource.objects.filter(
        image_id__in=image_ids, source__trusted=True, source_label__isnull=False
    ).values_list("image_id", "source_id", "source_label__code")
    for image_id, source_id, code in rows:
        votes.setdefault(image_id, set()).add((source_id, code))
    return {image_id: [code for _, code in sorted(pairs)] for image_id, pairs in votes.items()}


def _decide(*, image: Image, reviews: list[Review], trusted: list[str], actor) -> Image:
    if image.status != Image.Status.PENDING:
        return image
    if len(reviews) + len(trusted) < settings.DERMCURATE_REVIEWS_REQUIRED:
        return image
    decisions = [r.label.code if r.label_id else CANNOT_JUDGE for r in reviews] + trusted
    if len(set(decisions)) > 1:
        return image_mark_disputed(image=image, actor=actor, action="consensus_disputed")
    if decisions[0] == CANNOT_JUDGE:
        reason = Counter(r.reason for r in reviews).most_common(1)[0][0]
        comment = " | ".join(r.comment for r in reviews if r.comment)
        return image_exclude(image=image, reason=reason, comment=comment, actor=actor, action="consensus_excluded")
    return image_set_label(
        image=image, label=LabelClass.objects.get(code=decisions[0]), actor=actor, action="consensus_labeled"
    )


def consensus_evaluate(*, image: Image, actor=None) -> Image:
    """Decide one image (locked by the caller) if all its readers are in.

    In a re-review round only that round's reviews count, and no source label does: the round is a fresh read.
    """
    round_ = rereview_round_current(image)
    reviews = list(Review.objects.active().filter(image=image, round=round_).select_related("label").order_by("pk"))
    trusted = [] if round_ else trusted_votes([image.pk]).get(image.pk, [])
    decided = _decide(image=image, reviews=reviews, trusted=trusted, actor=actor)
    if round_ is not None:
        rereview_round_decided(image=decided)
    return decided


@transaction.atomic
def consensus_evaluate_many(*, image_ids: list[int], actor=None) -> int:
    """Decide many images at once (after a trusted import); returns how many were decided."""
    trusted = trusted_votes(image_ids)
    # An image read again in a re-review round is decided by that round's readers alone.
    reread = set(RereviewRound.objects.filter(image_id__in=image_ids).values_list("image_id", flat=True))
    candidates = [image_id for image_id in image_ids if image_id in trusted and image_id not in reread]
    reviews: dict[int, list[Review]] = {}
    for review in Review.objects.active().filter(image_id__in=candidates).select_related("label").order_by("pk"):
        reviews.setdefault(review.image_id, []).append(review)
    decided = 0
    for image in Image.objects.select_for_update().filter(pk__in=candidates, status=Image.Status.PENDING):
        if _decide(image=image, reviews=reviews.get(image.pk, []), trusted=trusted[image.pk], actor=actor).status != (
            Image.Status.PENDING
        ):
            decided += 1
    return decided
