from django.dispatch import receiver

from curation.signals import images_imported


@receiver(images_imported, dispatch_uid="labeling.evaluate_imported")
def evaluate_imported_images(sender, *, image_ids, **kwargs):
    # Trusted sources count as one reader: with one reader required their
    # labels are final as soon as the images arrive. (curation cannot call
    # labeling, which sits above it, so it says what happened.)
    from labeling.services.consensus import consensus_evaluate_many

    consensus_evaluate_many(image_ids=image_ids)
