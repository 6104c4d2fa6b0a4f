from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator
from core.limits import field_limits, id_limits
from core.pagination import Pagination, paginated_response
from core.serializers import JSONInputSerializer
from curation.models import Snapshot
from ml.models import LabelIssue
from ml.selectors.label_issues import cross_val_run_of, label_issue_list
from ml.services.label_issues import label_issue_dismiss


class LabelIssueOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    run = serializers.IntegerField(source="run_id")
    snapshot = serializers.IntegerField(source="snapshot_id")
    rank = serializers.IntegerField(help_text="1: the likeliest wrong label")
    image = serializers.IntegerField(source="image_id")
    label = serializers.CharField(source="label.code", help_text="the class the snapshot gave the image")
    suggested = serializers.CharField(source="suggested.code", help_text="the likeliest other class")
    score = serializers.FloatField(help_text="label quality, 0..1: the lower, the likelier the label is wrong")
    stale = serializers.BooleanField(help_text="the image's curated label changed since the snapshot froze")
    current_label = serializers.SerializerMethodField()
    image_status = serializers.CharField(source="image.status")
    suggestion_wrong = serializers.SerializerMethodField()
    dismissed_reason = serializers.CharField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_current_label(self, issue: LabelIssue) -> str | None:
        return issue.image.label.code if issue.image.label_id else None

    def get_suggestion_wrong(self, issue: LabelIssue) -> bool:
        return issue.dismissed_at is not None

    def get_thumbnail_url(self, issue: LabelIssue) -> str:
        path = reverse("curation:image-file", args=[issue.image_id, "thumbnail"])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


NO_CROSS_VALIDATION = inline_serializer(
    "NoCrossValidation", {"detail": serializers.CharField(), "code": serializers.CharField()}
)


class LabelIssueListApi(APIView):
    """Suspected label errors of a snapshot, worst first: confident learning (cleanlab) over its newest finished
    cross-validation run. 409 `no_cross_validation` when the snapshot has none."""

    permission_classes = [IsCurator]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        snapshot = serializers.IntegerField(**id_limits())
        open = serializers.BooleanField(required=False, default=False, help_text="leave out suggestions marked wrong")

    @extend_schema(
        parameters=[
            OpenApiParameter("snapshot", int, required=True, description="the snapshot's id"),
            OpenApiParameter("open", bool, required=False, description="leave out suggestions marked wrong"),
        ],
        responses={
            200: LabelIssueOutputSerializer(many=True),
            409: OpenApiResponse(NO_CROSS_VALIDATION, description="no finished cross-validation run"),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        snapshot = Snapshot.objects.filter(pk=filters.validated_data["snapshot"]).first()
        if snapshot is None:
            raise serializers.ValidationError(
                {"snapshot": f"There is no snapshot {filters.validated_data['snapshot']}."}
            )
        run = cross_val_run_of(snapshot)
        if run is None:
            return Response(
                {
                    "detail": f"Snapshot {snapshot.name!r} has no finished cross-validation run: start one with "
                    f"`train --snapshot {snapshot.pk} --cross-val K`.",
                    "code": "no_cross_validation",
                },
                status=status.HTTP_409_CONFLICT,
            )
        return paginated_response(
            request=request,
            view=self,
            queryset=label_issue_list(run, open_only=filters.validated_data["open"]),
            serializer_class=LabelIssueOutputSerializer,
        )


class LabelIssueDismissApi(APIView):
    """Mark the model's suggestion wrong: the curated label stands (kept in the audit log, with the reason)."""

    permission_classes = [IsCurator]

    class InputSerializer(JSONInputSerializer):
        reason = serializers.CharField(
            required=False, default="", allow_blank=True, **field_limits(LabelIssue, "dismissed_reason")
        )

    @extend_schema(request=InputSerializer, responses=LabelIssueOutputSerializer)
    def post(self, request, issue_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issue = get_object_or_404(LabelIssue, pk=issue_id)
        label_issue_dismiss(issue=issue, actor=request.user, reason=data.validated_data["reason"])
        row = label_issue_list(issue.run).get(pk=issue.pk)
        return Response(LabelIssueOutputSerializer(row, context={"request": request}).data)
