"""The reference gallery: curated images of one class, for a reader to calibrate against."""

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from curation.models import Image, LabelClass

GALLERY_SIZE = 12


def reference_images(*, label_code: str, exclude_image_id: int | None = None) -> tuple[LabelClass, QuerySet[Image]]:
    """Up to GALLERY_SIZE images whose final label is the class, in a stable random order.

    Never the image on screen nor any image in its duplicate group: a labeled copy
    of the very photo being read would give its label away.
    """
    label = LabelClass.objects.filter(code=label_code).first()
    if label is None:
        raise ValidationError(f"Unknown class code {label_code!r}.", code="invalid")
    images = Image.objects.labeled().filter(label=label).only("pk", "random_key")
    if exclude_image_id is not None:
        images = images.exclude(pk=exclude_image_id)
        group = Image.objects.filter(pk=exclude_image_id).values_list("duplicate_group_id", flat=True).first()
        if group is not None:
            images = images.exclude(duplicate_group_id=group)
    return label, images.order_by("random_key", "pk")[:GALLERY_SIZE]
