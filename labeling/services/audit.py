from labeling.models import AuditEvent


def audit_record(*, actor, action: str, image=None, target: str = "", before: dict, after: dict) -> AuditEvent:
    """Append one event to the audit log (the caller's transaction decides whether it stays)."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        image=image,
        target=target,
        before=before,
        after=after,
    )
