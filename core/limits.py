"""The limits of a model field, for the forms and serializers that feed it.

Input is checked against what the column can hold before it reaches the database,
so that an over-long name or an out-of-range number is a 400 naming the field, not
a DataError. Integer ranges are PostgreSQL's, applied on SQLite too, so data that
works on one database works on the other.
"""

from django.db import models

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "SmallIntegerField": (-(2**15), 2**15 - 1),
    "IntegerField": (-(2**31), 2**31 - 1),
    "BigIntegerField": (-(2**63), 2**63 - 1),
    "PositiveSmallIntegerField": (0, 2**15 - 1),
    "PositiveIntegerField": (0, 2**31 - 1),
    "PositiveBigIntegerField": (0, 2**63 - 1),
    "AutoField": (1, 2**31 - 1),
    "BigAutoField": (1, 2**63 - 1),
    "SmallAutoField": (1, 2**15 - 1),
}
# Primary keys of every table (BigAutoField): an id outside this range names no row.
ID_RANGE = INTEGER_RANGES["BigAutoField"]


def field_limits(model: type[models.Model], name: str) -> dict[str, int]:
    """`max_length`, or `min_value` and `max_value`, of `model.name`, as keyword arguments that both
    Django form fields and DRF serializer fields take."""
    field = model._meta.get_field(name)
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    internal_type = field.get_internal_type()
    if internal_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[internal_type]
        return {"min_value": low, "max_value": high}
    if getattr(field, "max_length", None):
        return {"max_length": field.max_length}
    return {}


def id_limits() -> dict[str, int]:
    """min_value / max_value for a field that takes a primary key."""
    return {"min_value": ID_RANGE[0], "max_value": ID_RANGE[1]}
