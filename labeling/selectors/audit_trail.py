"""The audit trail of one image as people read it: who, when, what changed from → to, and why."""

from core.selectors.audit import audit_events_for_image
from curation.models import ExclusionReason, LabelClass
from labeling.models import Confidence

ACTIONS = {
    "review": "Review",
    "review_undone": "Review undone",
    "review_changed": "Review changed",
    "consensus_labeled": "Consensus: labeled",
    "consensus_disputed": "Consensus: readers disagree",
    "consensus_excluded": "Consensus: cannot be judged",
    "adjudication": "Adjudication",
    "adjudication_undone": "Adjudication undone",
    "curator_override": "Curator override",
    "rereview_requested": "Sent for a fresh read",
    "suggestion_revealed": "Model's suggestion shown to the reader",
}
# The fields shown, in this order, with their names; ids and timings stay in the admin.
FIELDS = {
    "status": "Status",
    "label": "Class",
    "exclusion_reason": "Excluded because",
    "reason": "Cannot be judged because",
    "confidence": "Confidence",
    "comment": "Comment",
}


def _display(key: str, value, names: dict) -> str:
    if value in (None, "", {}):
        return "—"
    if key == "label":
        return names["label"].get(value, value)
    if key in ("exclusion_reason", "reason"):
        return names["reason"].get(value, value)
    if key == "confidence":
        return names["confidence"].get(value, value)
    if key == "status":
        return str(value).capitalize()
    return str(value)


def readable_audit_trail(*, image_id: int) -> list[dict]:
    names = {
        "label": dict(LabelClass.objects.values_list("code", "name")),
        "reason": dict(ExclusionReason.choices),
        "confidence": dict(Confidence.choices),
    }
    rows = []
    for event in audit_events_for_image(image_id=image_id):
        before, after = event.before or {}, event.after or {}
        changes = []
        for key, name in FIELDS.items():
            if key not in before and key not in after:
                continue
            old, new = before.get(key), after.get(key)
            if old == new or (event.action == "review_undone" and key not in before):
                continue
            changes.append({"field": name, "from": _display(key, old, names), "to": _display(key, new, names)})
        if event.action == "review_undone":
            changes.append({"field": "Review", "from": "active", "to": "retracted"})
        why = event.reason or after.get("note", "")
        rows.append(
            {
                "when": event.created_at,
                "who": event.actor.get_username() if event.actor_id else "system",
                "what": ACTIONS.get(event.action, event.action.replace("_", " ").capitalize()),
                "changes": changes,
                "why": why,
            }
        )
    return rows
