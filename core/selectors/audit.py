from django.db.models import QuerySet

from core.models import AuditEvent


def audit_events_for_image(*, image_id: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.about_image(image_id).select_related("actor").order_by("pk")


def audit_events_for_target(*, target: str) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(target=target).select_related("actor").order_by("pk")
