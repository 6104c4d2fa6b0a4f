from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdjudicator, IsReader, has_role
from accounts.roles import Role
from core.pagination import Pagination, paginated_response
from curation.selectors.images import image_clinical_context
from labeling.models import CannotJudgeReason
from labeling.selectors.progress import reader_progress
from labeling.selectors.reviews import review_list_visible_to
from labeling.services.queue import review_lease_release, review_queue_next
from labeling.services.reviews import adjudication_submit, review_submit, review_undo


class DecisionInputSerializer(serializers.Serializer):
    """{image, label} or {image, cannot_judge: true, reason[, comment]}."""

    image = serializers.IntegerField()
    label = serializers.CharField(required=False, allow_blank=True, default="")
    cannot_judge = serializers.BooleanField(required=False, default=False)
    reason = serializers.ChoiceField(choices=CannotJudgeReason.choices, required=False, allow_blank=True, default="")


class ReviewOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField(source="image_id")
    reader = serializers.CharField(source="reader.username")
    label = serializers.CharField(source="label.code", allow_null=True)
    cannot_judge = serializers.BooleanField()
    reason = serializers.CharField()
    comment = serializers.CharField()
    seconds_spent = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    retracted_at = serializers.DateTimeField(allow_null=True)


def _image_url(request, image_id: int, kind: str = "image") -> str:
    return request.build_absolute_uri(reverse("curation:image-file", args=[image_id, kind]))


class ReviewListCreateApi(APIView):
    """GET: reviews I may see (readers: their own only). POST: my review of an image."""

    pagination_class = Pagination

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsReader()]
        return [has_role(Role.REVIEWER, Role.ADJUDICATOR, Role.CURATOR)()]

    class FilterSerializer(serializers.Serializer):
        mine = serializers.BooleanField(required=False, default=False)
        image = serializers.IntegerField(required=False)

    class InputSerializer(DecisionInputSerializer):
        comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
        seconds_spent = serializers.FloatField(required=False, allow_null=True, default=None)

    class OutputSerializer(ReviewOutputSerializer):
        image_status = serializers.CharField(source="image.status")
        revealed_source_label = serializers.SerializerMethodField()

        def get_revealed_source_label(self, review) -> str | None:
            # Shown only after the reader's own decision, and only where the setting allows.
            if not settings.DERMCURATE_REVEAL_SOURCE_LABEL or review.image.source_label_id is None:
                return None
            return review.image.source_label.code

    @extend_schema(parameters=[FilterSerializer], responses=ReviewOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        reviews = review_list_visible_to(
            user=request.user, mine=filters.validated_data["mine"], image_id=filters.validated_data.get("image")
        )
        return paginated_response(request=request, view=self, queryset=reviews, serializer_class=ReviewOutputSerializer)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        review = review_submit(
            reader=request.user,
            image_id=values["image"],
            label_code=values["label"] or None,
            cannot_judge=values["cannot_judge"],
            reason=values["reason"],
            comment=values["comment"],
            seconds_spent=values["seconds_spent"],
        )
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)


class ReviewUndoApi(APIView):
    """Retract my last review (within a few minutes, while no consensus used it)."""

    permission_classes = [IsReader]

    @extend_schema(request=None, responses=ReviewOutputSerializer)
    def post(self, request):
        review = review_undo(reader=request.user)
        data = ReviewOutputSerializer(review).data
        data["image_url"] = _image_url(request, review.image_id)
        return Response(data)


class ReviewQueueNextApi(APIView):
    """Lease the next images for me (the current one and the one to prefetch), with my progress.

    Nothing here reveals a source label, another reader's decision or a model output.
    """

    permission_classes = [IsReader]

    class FilterSerializer(serializers.Serializer):
        count = serializers.IntegerField(required=False, default=2, min_value=1, max_value=10)

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            image = serializers.IntegerField()
            image_url = serializers.CharField()
            width = serializers.IntegerField()
            height = serializers.IntegerField()
            clinical_context = serializers.JSONField(
                help_text="age, sex, body_site, fitzpatrick, modality where known; never a source label"
            )
            lease_expires_at = serializers.DateTimeField()

        class ProgressSerializer(serializers.Serializer):
            today = serializers.IntegerField()
            total = serializers.IntegerField()
            left = serializers.IntegerField()
            left_more = serializers.BooleanField(help_text="more than `left` images are left")

        items = ItemSerializer(many=True)
        progress = ProgressSerializer()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        leases = review_queue_next(reader=request.user, count=filters.validated_data["count"])
        items = [
            {
                "image": lease.image_id,
                "image_url": _image_url(request, lease.image_id),
                "width": lease.image.sanitized_width,
                "height": lease.image.sanitized_height,
                "clinical_context": image_clinical_context(lease.image),
                "lease_expires_at": lease.expires_at,
            }
            for lease in leases
        ]
        return Response(self.OutputSerializer({"items": items, "progress": reader_progress(reader=request.user)}).data)


class ReviewQueueSkipApi(APIView):
    """Skip an image: release my hold; it stays out of my queue for a while."""

    permission_classes = [IsReader]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, image_id: int):
        review_lease_release(reader=request.user, image_id=image_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AdjudicationCreateApi(APIView):
    permission_classes = [IsAdjudicator]

    class InputSerializer(DecisionInputSerializer):
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        image = serializers.IntegerField(source="image_id")
        adjudicator = serializers.CharField(source="adjudicator.username")
        label = serializers.CharField(source="label.code", allow_null=True)
        cannot_judge = serializers.SerializerMethodField()
        reason = serializers.CharField()
        note = serializers.CharField()
        image_status = serializers.CharField(source="image.status")
        created_at = serializers.DateTimeField()

        def get_cannot_judge(self, adjudication) -> bool:
            return adjudication.label_id is None

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        adjudication = adjudication_submit(
            adjudicator=request.user,
            image_id=values["image"],
            label_code=values["label"] or None,
            cannot_judge=values["cannot_judge"],
            reason=values["reason"],
            note=values["note"],
        )
        return Response(self.OutputSerializer(adjudication).data, status=status.HTTP_201_CREATED)
