"""API glue shared by every app: service errors become clear HTTP answers."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    # Services raise Django's ValidationError / PermissionDenied; the API
    # answers them as 400 / 403 with the message a person can read.
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages if len(exc.messages) > 1 else exc.messages[0]})
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)


class AutoSchema(SpectacularAutoSchema):
    """Names the nested Input/Output serializers of each API view after the view
    (LabelClassListApi.OutputSerializer → LabelClassListOutput), so that the
    components of the OpenAPI schema are unique and readable."""

    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and inner in ("InputSerializer", "OutputSerializer", "FilterSerializer"):
            return outer.split(".")[-1].removesuffix("Api") + inner.removesuffix("Serializer")
        return name
