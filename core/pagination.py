from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class Pagination(PageNumberPagination):
    """`?page=` (a page past the end, or no number: 404) and `?page_size=` (1 to 500, else 400)."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        size = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return size

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters


def paginated_response(*, request, view, queryset, serializer_class) -> Response:
    """A `count` / `next` / `previous` / `results` page of `queryset`.

    The view declares `pagination_class = Pagination` and documents its GET with
    `extend_schema(responses=Serializer(many=True))`: drf-spectacular then documents
    the paged object and the `page` / `page_size` parameters, as this answers.
    """
    pagination_class = getattr(view, "pagination_class", None)
    if pagination_class is None:
        raise ImproperlyConfigured(
            f"{type(view).__name__} answers a page: set pagination_class = Pagination, so its schema says so."
        )
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context={"request": request}).data)
