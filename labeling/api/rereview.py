from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator
from core.limits import id_limits
from core.pagination import Pagination, paginated_response
from core.serializers import JSONInputSerializer
from labeling.models import RereviewRound
from labeling.selectors.rereview import ROUND_STATES, rereview_round_list
from labeling.services.rereview import MAX_IMAGES_PER_REQUEST, rereview_request


class RereviewRoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField(source="image_id")
    requested_by = serializers.CharField(source="requested_by.username")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    status_before = serializers.CharField()
    label_before = serializers.CharField(source="label_before.code", allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    status_after = serializers.CharField(help_text="empty while the round is open")
    label_after = serializers.CharField(source="label_after.code", allow_null=True)
    exclusion_reason_after = serializers.CharField()
    changed = serializers.BooleanField(allow_null=True, help_text="the round decided otherwise; null while open")


class RereviewListCreateApi(APIView):
    """Re-review rounds (curators). POST sends images back for a fresh blind read by readers who have not seen
    them: all or nothing, 400 naming any image that is excluded, still pending or unknown. GET lists rounds;
    `?state=changed` counts the re-reads that changed the label."""

    permission_classes = [IsCurator]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=list(ROUND_STATES), required=False)
        image = serializers.IntegerField(required=False, **id_limits())

    class InputSerializer(JSONInputSerializer):
        images = serializers.ListField(
            child=serializers.IntegerField(**id_limits()), min_length=1, max_length=MAX_IMAGES_PER_REQUEST
        )
        reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=RereviewRound._meta.get_field("reason").max_length
        )

    class OutputSerializer(serializers.Serializer):
        rounds = RereviewRoundSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=RereviewRoundSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rounds = rereview_round_list(
            state=filters.validated_data.get("state"), image_id=filters.validated_data.get("image")
        )
        return paginated_response(request=request, view=self, queryset=rounds, serializer_class=RereviewRoundSerializer)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rounds = rereview_request(
            requested_by=request.user,
            image_ids=data.validated_data["images"],
            reason=data.validated_data["reason"],
        )
        rounds = list(rereview_round_list().filter(pk__in=[r.pk for r in rounds]).order_by("pk"))
        return Response(self.OutputSerializer({"rounds": rounds}).data, status=status.HTTP_201_CREATED)
