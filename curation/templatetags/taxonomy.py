"""Display names for the codes that stay in the API and the CSVs: people read names, never slugs.

{% load taxonomy %}{{ row.code|class_name }} {{ image.exclusion_reason|reason_name }}
"""

from django import template

from curation.models import ExclusionReason, LabelClass

register = template.Library()


def _class_names() -> dict[str, str]:
    return dict(LabelClass.objects.values_list("code", "name"))


@register.filter
def class_name(code: str) -> str:
    """The display name of a class code (or "Cannot be judged"); unknown codes as they are."""
    if code in (None, ""):
        return "—"
    if code == "cannot_judge":
        return "Cannot be judged"
    # Eleven rows, read once per rendering of a page that asks.
    names = getattr(class_name, "_names", None)
    if not names or code not in names:
        names = class_name._names = _class_names()
    return names.get(code, code)


@register.filter
def reason_name(code: str) -> str:
    if code in (None, ""):
        return "—"
    return ExclusionReason(code).label if code in ExclusionReason.values else code
