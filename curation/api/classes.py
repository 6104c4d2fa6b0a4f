from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.permissions import HasAnyRole
from core.pagination import Pagination, paginated_response
from curation.selectors.classes import label_class_list


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
