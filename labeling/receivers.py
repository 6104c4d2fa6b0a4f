from django.dispatch import receiver

from curation.signals import audit_event, images_imported


@receiver(audit_event, dispatch_uid="labeling.record_audit_event")
def record_audit_event(sender, *, actor, action, image=None, target="", before=None, after=None, **kwargs):
    from labeling.services.audit import audit_record

    audit_record(actor=actor, action=action, image=image, target=target, before=before or {}, after=after or {})


@receiver(images_imported, dispatch_uid="labeling.evaluate_imported")
def evaluate_imported_images(sender, *, image_ids, **kwargs):
    # Trusted sources count as one reader: with one reader required their
    # labels are final as soon as the images arrive.
    from labeling.services.consensus import consensus_evaluate_many

    consensus_evaluate_many(image_ids=image_ids)
