from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator, IsExporter
from core.limits import field_limits
from core.pagination import Pagination, paginated_response
from core.serializers import JSONInputSerializer
from curation.api.classes import ClassCodeField
from curation.models import Snapshot
from curation.selectors.exports import (
    EXPORT_CONTENT_TYPES,
    EXPORT_FORMATS,
    EXPORT_SPLITS,
    snapshot_archive_chunks,
    snapshot_export_chunks,
)
from curation.selectors.snapshots import snapshot_diff, snapshot_list
from curation.services.snapshots import snapshot_create


class SnapshotOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    content_hash = serializers.CharField()
    seed = serializers.IntegerField()
    ratios = serializers.ListField(child=serializers.FloatField())
    classes = serializers.ListField(child=serializers.CharField())
    cap_per_class = serializers.IntegerField(allow_null=True)
    item_count = serializers.IntegerField()
    stats = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()


class SnapshotListCreateApi(APIView):
    """GET: snapshots (curators, exporters). POST: freeze a new one (curators)."""

    pagination_class = Pagination

    def get_permissions(self):
        return [IsCurator()] if self.request.method == "POST" else [IsExporter()]

    class InputSerializer(JSONInputSerializer):
        name = serializers.CharField(**field_limits(Snapshot, "name"))
        seed = serializers.IntegerField(required=False, default=0, **field_limits(Snapshot, "seed"))
        ratios = serializers.ListField(
            child=serializers.FloatField(min_value=0, max_value=1),
            min_length=3,
            max_length=3,
            required=False,
            default=[0.8, 0.1, 0.1],
            help_text="train, val, test: they sum to 1",
        )
        classes = serializers.ListField(
            child=ClassCodeField(), max_length=1000, required=False, default=list, help_text="class codes (none: all)"
        )
        cap_per_class = serializers.IntegerField(
            required=False, allow_null=True, default=None, **{**field_limits(Snapshot, "cap_per_class"), "min_value": 1}
        )

    @extend_schema(responses=SnapshotOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=snapshot_list(), serializer_class=SnapshotOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={201: SnapshotOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = snapshot_create(created_by=request.user, **data.validated_data)
        return Response(SnapshotOutputSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotDetailApi(APIView):
    """A snapshot. Snapshots are frozen: there is no PATCH, PUT or DELETE (405)."""

    permission_classes = [IsExporter]

    @extend_schema(responses=SnapshotOutputSerializer)
    def get(self, request, snapshot_id: int):
        return Response(SnapshotOutputSerializer(get_object_or_404(snapshot_list(), pk=snapshot_id)).data)


def image_url_prefix(request) -> str:
    return request.build_absolute_uri(reverse("curation:image-file", args=[0, "image"])).removesuffix("0/image.jpg")


class SnapshotExportApi(APIView):
    """Stream a snapshot's items as CSV or JSON lines, one row per image, in a stable order."""

    permission_classes = [IsExporter]

    class FilterSerializer(serializers.Serializer):
        split = serializers.ChoiceField(
            choices=EXPORT_SPLITS,
            required=False,
            default="all",
            error_messages={"invalid_choice": f'"{{input}}" is not a split; use one of {", ".join(EXPORT_SPLITS)}.'},
        )
        format = serializers.ChoiceField(
            choices=EXPORT_FORMATS,
            required=False,
            default="csv",
            error_messages={"invalid_choice": f'"{{input}}" is not a format; use one of {", ".join(EXPORT_FORMATS)}.'},
        )

    @extend_schema(
        parameters=[FilterSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/jsonl"): OpenApiTypes.STR},
    )
    def get(self, request, snapshot_id: int):
        snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        split, file_format = params.validated_data["split"], params.validated_data["format"]
        chunks = snapshot_export_chunks(
            snapshot,
            split=None if split == "all" else split,
            file_format=file_format,
            image_url_prefix=image_url_prefix(request),
        )
        response = StreamingHttpResponse(chunks, content_type=EXPORT_CONTENT_TYPES[file_format])
        filename = f"{slugify(snapshot.name) or 'snapshot'}-{snapshot.pk}-{split}.{file_format}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Snapshot-Content-Hash"] = snapshot.content_hash
        return response


class SnapshotArchiveApi(APIView):
    """A streamed zip of the sanitized images as <split>/<NN. class name>/<sha256>.jpg, with
    manifest.csv and stats.json; keras.utils.image_dataset_from_directory reads each split as it is."""

    permission_classes = [IsExporter]

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, snapshot_id: int):
        snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
        response = StreamingHttpResponse(snapshot_archive_chunks(snapshot), content_type="application/zip")
        response["Content-Disposition"] = (
            f'attachment; filename="{slugify(snapshot.name) or "snapshot"}-{snapshot.pk}.zip"'
        )
        return response


class SnapshotDiffApi(APIView):
    """Images added, removed, relabeled and moved between splits from one snapshot to another."""

    permission_classes = [IsExporter]

    class OutputSerializer(serializers.Serializer):
        base = serializers.IntegerField()
        other = serializers.IntegerField()
        added = serializers.ListField(child=serializers.IntegerField())
        removed = serializers.ListField(child=serializers.IntegerField())
        relabeled = serializers.ListField(child=serializers.DictField())
        moved = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, snapshot_id: int, other_id: int):
        base = get_object_or_404(Snapshot, pk=snapshot_id)
        other = get_object_or_404(Snapshot, pk=other_id)
        return Response(snapshot_diff(base, other))
