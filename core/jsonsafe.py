"""JSON from outside, parsed with a bound on nesting (json.loads itself only stops at Python's
recursion limit, with a RecursionError that would become a 500)."""

import json
from typing import Any

from django.conf import settings


class JSONTooDeep(ValueError):
    pass


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(value: Any, *, max_depth: int | None = None) -> Any:
    limit = settings.DERMCURATE_JSON_MAX_DEPTH if max_depth is None else max_depth
    if json_depth(value) > limit:
        raise JSONTooDeep(f"nested deeper than {limit} levels")
    return value


def json_loads_bounded(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """json.loads, refusing (ValueError) JSON nested deeper than DERMCURATE_JSON_MAX_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(f"nested deeper than {settings.DERMCURATE_JSON_MAX_DEPTH} levels") from None
    return check_json_depth(value, max_depth=max_depth)
