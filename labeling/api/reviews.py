from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdjudicator, IsReader, has_role
from accounts.roles import Role
from core.pagination import Pagination, paginated_response
from curation.selectors.clinical import clinical_context
from curation.selectors.images import image_clinical_context
from labeling.models import CannotJudgeReason, Confidence
from labeling.selectors.gallery import reference_images
from labeling.selectors.progress import reader_progress
from labeling.selectors.reviews import review_list_visible_to
from labeling.services.queue import review_lease_release, review_queue_next, review_queue_open
from labeling.services.reviews import (
    adjudication_submit,
    adjudication_undo,
    review_change,
    review_submit,
    review_undo,
)


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
    confidence = serializers.CharField()
    seconds_spent = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    retracted_at = serializers.DateTimeField(allow_null=True)
    replaces = serializers.IntegerField(source="replaces_id", allow_null=True)


class MyReviewOutputSerializer(ReviewOutputSerializer):
    """What a reader gets back for their own decision: nothing about the image's state or the other readers."""

    revealed_source_label = serializers.SerializerMethodField()

    def get_revealed_source_label(self, review) -> str | None:
        # Shown only after the reader's own decision, and only where the setting allows.
        if not settings.DERMCURATE_REVEAL_SOURCE_LABEL or review.image.source_label_id is None:
            return None
        return review.image.source_label.code


class ClinicalSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField()


class QueueItemSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    image_url = serializers.CharField()
    full_image_url = serializers.CharField(help_text="the largest served copy: original resolution, no metadata")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    clinical_context = serializers.JSONField(
        help_text="age, sex, body_site, fitzpatrick, modality where known, as imported; never a source label"
    )
    clinical = ClinicalSerializer(many=True, help_text="the same in words, in a fixed order, for a screen")
    lease_expires_at = serializers.DateTimeField(allow_null=True)


def _image_url(request, image_id: int, kind: str = "image") -> str:
    return request.build_absolute_uri(reverse("curation:image-file", args=[image_id, kind]))


def _queue_item(request, image, lease_expires_at=None) -> dict:
    """One image as the review screen shows it; clinical keys only, never a source label."""
    return {
        "image": image.pk,
        "image_url": _image_url(request, image.pk),
        "full_image_url": _image_url(request, image.pk, "full"),
        "width": image.sanitized_width,
        "height": image.sanitized_height,
        "clinical_context": image_clinical_context(image),
        "clinical": clinical_context(image.metadata),
        "lease_expires_at": lease_expires_at,
    }


class ReviewListCreateApi(APIView):
    """GET: reviews I may see (readers: their own only). POST: my review of an image."""

    pagination_class = Pagination
    conflict_answer = (
        "The image is not in your queue (`not_in_queue`): decide only an image the queue gave you or you reopened."
    )

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsReader()]
        return [has_role(Role.REVIEWER, Role.ADJUDICATOR, Role.CURATOR)()]

    class FilterSerializer(serializers.Serializer):
        mine = serializers.BooleanField(required=False, default=False)
        image = serializers.IntegerField(required=False)

    class InputSerializer(DecisionInputSerializer):
        comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
        confidence = serializers.ChoiceField(choices=Confidence.choices, required=False, default=Confidence.SURE)
        seconds_spent = serializers.FloatField(
            required=False, allow_null=True, default=None, min_value=0, max_value=24 * 3600
        )

    OutputSerializer = MyReviewOutputSerializer

    @extend_schema(parameters=[FilterSerializer], responses=ReviewOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        reviews = review_list_visible_to(
            user=request.user, mine=filters.validated_data["mine"], image_id=filters.validated_data.get("image")
        )
        return paginated_response(request=request, view=self, queryset=reviews, serializer_class=ReviewOutputSerializer)

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        description="Decide the image on screen. Accepted only while you hold its lease (it came from your "
        "queue, or you reopened it after a skip); any other image is answered 409 "
        '`{"code": "not_in_queue"}`.',
    )
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
            confidence=values["confidence"],
            seconds_spent=values["seconds_spent"],
        )
        return Response(self.OutputSerializer(review).data, status=status.HTTP_201_CREATED)


class ReviewChangeApi(APIView):
    """Change my decision on an image (opened from my history) while it is still pending."""

    permission_classes = [IsReader]
    conflict_answer = "You have no decision on this image (`not_yours`)."
    InputSerializer = ReviewListCreateApi.InputSerializer

    @extend_schema(request=InputSerializer, responses=MyReviewOutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        review = review_change(
            reader=request.user,
            image_id=values["image"],
            label_code=values["label"] or None,
            cannot_judge=values["cannot_judge"],
            reason=values["reason"],
            comment=values["comment"],
            confidence=values["confidence"],
            seconds_spent=values["seconds_spent"],
        )
        return Response(MyReviewOutputSerializer(review).data)


class ReviewUndoApi(APIView):
    """Retract my last review (within a few minutes, while no consensus used it); the image comes back to me."""

    permission_classes = [IsReader]
    conflict_answer = (
        "Another reader has the image open just now (`held_by_other`); change the decision from My reviews."
    )

    class OutputSerializer(ReviewOutputSerializer):
        item = QueueItemSerializer()

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request):
        review = review_undo(reader=request.user)
        data = ReviewOutputSerializer(review).data
        data["image_url"] = _image_url(request, review.image_id)
        data["item"] = QueueItemSerializer(_queue_item(request, review.image)).data
        return Response(data)


class ReviewQueueNextApi(APIView):
    """Lease the next images for me (the current one and the one to prefetch), with my progress.

    Nothing here reveals a source label, another reader's decision or a model output.
    """

    permission_classes = [IsReader]

    class FilterSerializer(serializers.Serializer):
        count = serializers.IntegerField(required=False, default=2, min_value=1, max_value=10)

    class OutputSerializer(serializers.Serializer):
        class ProgressSerializer(serializers.Serializer):
            today = serializers.IntegerField()
            total = serializers.IntegerField()
            left = serializers.IntegerField()
            left_more = serializers.BooleanField(help_text="more than `left` images are left")

        items = QueueItemSerializer(many=True)
        progress = ProgressSerializer()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        leases = review_queue_next(reader=request.user, count=filters.validated_data["count"])
        items = [_queue_item(request, lease.image, lease.expires_at) for lease in leases]
        return Response(self.OutputSerializer({"items": items, "progress": reader_progress(reader=request.user)}).data)


class ReviewQueueSkipApi(APIView):
    """Skip an image: release my hold; it stays out of my queue for a while."""

    permission_classes = [IsReader]
    conflict_answer = "You do not hold this image (`not_in_queue`)."

    @extend_schema(request=None, responses={204: None})
    def post(self, request, image_id: int):
        review_lease_release(reader=request.user, image_id=image_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewQueueOpenApi(APIView):
    """Open an image from my history: one I decided (to change while it is pending) or one I skipped
    (leased to me again). Any other image: 409 `not_in_queue`."""

    permission_classes = [IsReader]
    conflict_answer = (
        "The image is neither decided nor skipped by you (`not_in_queue`), "
        "or another reader has it open (`held_by_other`)."
    )

    class OutputSerializer(serializers.Serializer):
        mode = serializers.ChoiceField(choices=["new", "change"])
        item = QueueItemSerializer()
        decision = MyReviewOutputSerializer(allow_null=True, help_text="my current decision (mode change)")

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request, image_id: int):
        try:
            mode, lease = review_queue_open(reader=request.user, image_id=image_id)
        except ValidationError as error:
            if error.code == "no_image":  # the path names no image
                raise NotFound(error.messages[0]) from error
            raise
        mine = review_list_visible_to(user=request.user, mine=True, image_id=image_id).active().first()
        image = lease.image if lease else mine.image
        body = {
            "mode": mode,
            "item": _queue_item(request, image, lease.expires_at if lease else None),
            "decision": mine if mode == "change" else None,
        }
        return Response(self.OutputSerializer(body).data)


class ReferenceImagesApi(APIView):
    """Up to 12 images whose final label is the class, for calibration (never the image on screen or its
    duplicates)."""

    permission_classes = [IsReader]

    class FilterSerializer(serializers.Serializer):
        label = serializers.SlugField(max_length=40)
        exclude = serializers.IntegerField(required=False, help_text="the image on screen")

    class OutputSerializer(serializers.Serializer):
        class ReferenceSerializer(serializers.Serializer):
            image = serializers.IntegerField()
            image_url = serializers.CharField()
            thumbnail_url = serializers.CharField()

        label = serializers.CharField()
        name = serializers.CharField()
        items = ReferenceSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        label, images = reference_images(
            label_code=filters.validated_data["label"], exclude_image_id=filters.validated_data.get("exclude")
        )
        items = [
            {
                "image": image.pk,
                "image_url": _image_url(request, image.pk),
                "thumbnail_url": _image_url(request, image.pk, "thumbnail"),
            }
            for image in images
        ]
        return Response(self.OutputSerializer({"label": label.code, "name": label.name, "items": items}).data)


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


class AdjudicationUndoApi(APIView):
    """Take back my adjudication of an image within the undo window; it is in dispute again."""

    permission_classes = [IsAdjudicator]

    class InputSerializer(serializers.Serializer):
        image = serializers.IntegerField()

    class OutputSerializer(serializers.Serializer):
        image = serializers.IntegerField(source="pk")
        image_status = serializers.CharField(source="status")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image = adjudication_undo(adjudicator=request.user, image_id=data.validated_data["image"])
        return Response(self.OutputSerializer(image).data)
