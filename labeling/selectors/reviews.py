from django.db.models import QuerySet

from accounts.roles import Role
from accounts.selectors import user_has_role
from curation.models import Image
from labeling.models import Review


def review_list_visible_to(*, user, mine: bool = False, image_id: int | None = None) -> QuerySet[Review]:
    """Reviews a user may read: readers their own only (blindness); adjudicators also every
    review of a disputed image; curators all."""
    reviews = Review.objects.select_related("label", "reader", "image").order_by("-created_at", "-pk")
    if image_id is not None:
        reviews = reviews.filter(image_id=image_id)
    if mine:
        return reviews.filter(reader=user)
    if user_has_role(user, Role.CURATOR):
        return reviews
    if user_has_role(user, Role.ADJUDICATOR):
        disputed = Image.objects.filter(status=Image.Status.DISPUTED).values("pk")
        return reviews.filter(reader=user) | reviews.filter(image__in=disputed)
    return reviews.filter(reader=user)
