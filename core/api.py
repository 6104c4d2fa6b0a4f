"""API glue shared by every app: service errors become clear HTTP answers, and the schema says so."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import Conflict
from core.services.jobs import JobQueueUnavailable


class ConflictError(exceptions.ValidationError):
    status_code = status.HTTP_409_CONFLICT


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"

    def __init__(self, detail: str, *, code: str, wait: int):
        # The code in the body, for clients that branch on it rather than on the wording.
        super().__init__({"detail": detail, "code": code}, code)
        self.wait = wait  # DRF's handler sends it as Retry-After


def exception_handler(exc, context):
    # Services raise Django's ValidationError / PermissionDenied; the API
    # answers them as 400 / 403 (409 for a Conflict) with the message a person
    # can read and, where the service gave one, a machine-readable `code` that
    # front ends test instead of the wording.
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "message_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            body = {"detail": exc.messages if len(exc.messages) > 1 else exc.messages[0]}
            if getattr(exc, "code", None):
                body["code"] = exc.code
            exc = (ConflictError if isinstance(exc, Conflict) else exceptions.ValidationError)(body)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, JobQueueUnavailable):
        exc = ServiceUnavailable(str(exc), code="job_queue_unavailable", wait=exc.retry_after)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        # A bare `ValidationError("…")` renders as a list; every error body is an object.
        response.data = {"detail": response.data[0] if len(response.data) == 1 else response.data}
    return response


def not_found(request, exception):
    """The 404 page, and under /api/ (an id that is not a number, a path that does not exist) JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def bad_request(request, exception):
    """Django's 400 (a request it refuses before any view: too many form fields, a body too large),
    and under /api/ the same in JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request: the request is malformed or too large."}, status=400)
    return django_bad_request(request, exception)


ERROR_SCHEMA = {
    "type": "object",
    "description": "Why the request was refused.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
CODED_ERROR_SCHEMA = {
    "type": "object",
    "description": "Why the request was refused, and a code to branch on.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "The input was refused: `detail` for the request as a whole, or one entry per field named after it, "
        "holding its messages (a list of strings; an object by index or key for a list or object field)."
    ),
    "properties": {
        "detail": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": {},
}
ERROR_ANSWERS = {
    "400": ("ValidationError", VALIDATION_ERROR_SCHEMA, "The input is invalid, or the service refused it."),
    "401": ("Error", ERROR_SCHEMA, "No valid credentials (send `Authorization: Token <token>`)."),
    "403": ("Error", ERROR_SCHEMA, "The caller's role may not do this."),
    "404": ("Error", ERROR_SCHEMA, "No such object, or no such page of results."),
    "413": ("CodedError", CODED_ERROR_SCHEMA, 'The request body is larger than its limit (README, "Operating it").'),
    "429": (
        "CodedError",
        CODED_ERROR_SCHEMA,
        "Too many requests (the API's rate), or too many failed logins (`locked_out`); see `Retry-After`.",
    ),
    "503": (
        "CodedError",
        CODED_ERROR_SCHEMA,
        "The database (`database_unavailable`) or the job queue (`job_queue_unavailable`) is not answering; "
        "nothing was done. See `Retry-After`.",
    ),
}
CONFLICT_SCHEMA = {
    "type": "object",
    "description": "The request clashes with the current state; `code` says how, for programs.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
PAGE_PARAMETERS = {"page", "page_size"}


class AutoSchema(SpectacularAutoSchema):
    """The project's OpenAPI generator.

    - Names the nested Input/Output serializers of each API view after the view
      (LabelClassListApi.OutputSerializer → LabelClassListOutput), so that the
      components of the schema are unique and readable.
    - Documents the error answers every operation can give, with the bodies that
      `exception_handler` returns: 401, 403, 429 (rates, lockout) and 503 (an outage)
      always; 404 where the path names an object or the list is paged; 400 where the
      operation takes input (a body or query parameters) or asks a service to act
      (POST); 413 where it takes a body.
    - Documents 409 (`ConflictError`) on the operations of a view whose `conflict_answer` says when
      it is given (the services raise core.exceptions.Conflict).
    - Says that an optional query parameter may be sent empty (DRF reads it as left out).
    """

    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer and inner in ("InputSerializer", "OutputSerializer", "FilterSerializer"):
            return outer.split(".")[-1].removesuffix("Api") + inner.removesuffix("Serializer")
        return name

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
        codes = ["401", "403", "429", "503"]
        if any(parameter["in"] == "path" for parameter in parameters) or query & PAGE_PARAMETERS:
            codes.append("404")
        if "requestBody" in operation or self.method in ("POST", "PUT", "PATCH") or query:
            codes.append("400")
        if "requestBody" in operation:
            codes.append("413")
        for parameter in parameters:
            if parameter["in"] == "query" and not parameter.get("required"):
                # As DRF reads a query string: `?split=` is the same as leaving `split` out.
                parameter["allowEmptyValue"] = True
        for code in codes:
            if code not in operation["responses"]:
                name, schema, description = ERROR_ANSWERS[code]
                component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
                registry.register_on_missing(component)
                operation["responses"][code] = {
                    "description": description,
                    "content": {"application/json": {"schema": component.ref}},
                }
        conflict = getattr(self.view, "conflict_answer", "")
        if conflict and self.method != "GET" and "409" not in operation["responses"]:
            component = ResolvedComponent(
                name="ConflictError", type=ResolvedComponent.SCHEMA, schema=CONFLICT_SCHEMA, object="ConflictError"
            )
            registry.register_on_missing(component)
            operation["responses"]["409"] = {
                "description": conflict,
                "content": {"application/json": {"schema": component.ref}},
            }
        operation["responses"] = dict(sorted(operation["responses"].items()))
        return operation
