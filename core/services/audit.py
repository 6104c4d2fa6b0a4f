from core.models import AuditEvent


def audit_record(
    *,
    actor,
    action: str,
    target: str = "",
    image_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event to the audit log; the caller's transaction decides whether it stays.

    Every app writes the audit log through this one function, directly (no signals).
    """
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target=target,
        image_id=image_id,
        before=before or {},
        after=after or {},
        reason=reason.strip(),
    )
