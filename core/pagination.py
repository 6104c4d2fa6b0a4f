from django.core.exceptions import ImproperlyConfigured
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


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
