from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.permissions import HasAnyRole
from core.pagination import Pagination, paginated_response
from curation.selectors.classes import label_class_list


def class_code_field(**kwargs) -> serializers.ChoiceField:
    """A class code, one of those in the database (so the schema lists them). Build it when the
    serializer is built (in its __init__), never at import time: the codes are read from the database."""
    codes = [label.code for label in label_class_list()]
    return serializers.ChoiceField(
        choices=codes,
        error_messages={"invalid_choice": f"Unknown class code '{{input}}'. Known: {', '.join(codes)}."},
        **kwargs,
    )


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
