from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.permissions import HasAnyRole
from core.pagination import Pagination, paginated_response
from curation.models import LabelClass
from curation.selectors.classes import label_class_list


class ClassCodeField(serializers.SlugField):
    """A class code. The codes live in the database, so the schema (built without one) cannot list them;
    an unknown code is a 400 that lists the known ones."""

    def __init__(self, **kwargs):
        super().__init__(max_length=LabelClass._meta.get_field("code").max_length, **kwargs)

    def to_internal_value(self, data) -> str:
        code = super().to_internal_value(data)
        known = [label.code for label in label_class_list()]
        if code not in known:
            raise serializers.ValidationError(f"Unknown class code {code!r}. Known: {', '.join(known)}.")
        return code


class LabelClassListApi(APIView):
    """The label classes in index order (model outputs follow this order)."""

    permission_classes = [HasAnyRole]
    pagination_class = Pagination

    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        aliases = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=label_class_list(), serializer_class=self.OutputSerializer
        )
