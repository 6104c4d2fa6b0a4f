"""Serializers shared by every app's API."""

from rest_framework import serializers

# The JSON types each field takes, as the schema documents them (bool is not a number here).
_STRING_FIELDS = (serializers.CharField, serializers.ChoiceField)
_NUMBER_TYPES = (int, float)


def _json_type_error(field: serializers.Field, value) -> str | None:
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "Must be a whole number."
    if isinstance(field, serializers.FloatField):
        ok = isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)
        return None if ok else "Must be a number."
    if isinstance(field, _STRING_FIELDS) and not isinstance(field, serializers.MultipleChoiceField):
        return None if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return None  # DRF's own message ("Expected a list of items …")
        for index, item in enumerate(value):
            problem = _json_type_error(field.child, item)
            if problem:
                return f"Item {index}: {problem[0].lower()}{problem[1:]}"
    return None


class JSONInputSerializer(serializers.Serializer):
    """A request body read as JSON, taken as the schema says it: `"force": 0`, `"name": 7` or
    `"snapshot": "6"` are refused (400, naming the field) instead of coerced, as DRF would."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for name, field in self.fields.items():
                if name in data and not field.read_only:
                    problem = _json_type_error(field, data[name])
                    if problem:
                        errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
