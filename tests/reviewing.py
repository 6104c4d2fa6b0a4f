"""Readers deciding images as the queue gives them: a lease first, then the decision."""

from curation.models import Image
from labeling.services.queue import review_lease_take
from labeling.services.reviews import review_submit


def decide(*, reader, image_id: int, **decision):
    """Give the reader the image (as the queue would) and record their decision through the service."""
    lease = review_lease_take(reader=reader, image=Image.objects.get(pk=image_id))
    assert lease is not None, f"image {image_id} is held by another reader"
    return review_submit(reader=reader, image_id=image_id, **decision)


def give(reader, image) -> None:
    """Lease the image to the reader, as the queue would."""
    assert review_lease_take(reader=reader, image=image) is not None
