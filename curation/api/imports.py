from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator
from core.limits import field_limits
from core.pagination import Pagination, paginated_response
from core.services.jobs import job_retry
from curation.models import ImportBatch, Source, UnmappedPolicy
from curation.selectors.images import import_batch_list
from curation.services.imports import import_batch_request


class ImportBatchOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField(source="source.name")
    trusted = serializers.BooleanField(source="source.trusted")
    path = serializers.CharField(help_text="the folder or zip imported")
    status = serializers.CharField(help_text="queued | running | succeeded | failed | cancelled")
    imported = serializers.IntegerField()
    already_present = serializers.IntegerField()
    duplicates_exact = serializers.IntegerField(help_text="files in this batch with the same bytes as another")
    rejected = serializers.IntegerField(source="rejected_count")
    progress = serializers.JSONField(help_text="done, total (files) and fraction")
    unmapped = serializers.CharField(help_text="fail | skip: what happens to folders that match no class")
    label_column = serializers.CharField()
    report = serializers.JSONField(help_text="the plan: folders and their classes, skipped files, metadata joins")
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    seconds = serializers.FloatField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ImportBatchListCreateApi(APIView):
    """GET: import batches, newest first. POST: upload a zip of class folders; a worker imports it (202)."""

    permission_classes = [IsCurator]
    pagination_class = Pagination
    parser_classes = [MultiPartParser]  # a file upload: multipart only

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="a zip of class folders (the Kaggle layout, at any depth)")
        source = serializers.CharField(**field_limits(Source, "name"))
        trusted = serializers.BooleanField(required=False, default=False)
        map_file = serializers.FileField(
            required=False, help_text="CSV with columns folder,code (code: a class code, an index or skip)"
        )
        unmapped = serializers.ChoiceField(choices=UnmappedPolicy.choices, required=False, default=UnmappedPolicy.FAIL)
        metadata = serializers.FileField(
            required=False,
            help_text="metadata CSV joined on image_id or filename (HAM10000 / ISIC columns as they are)",
        )
        label_column = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            **field_limits(ImportBatch, "label_column"),
            help_text="metadata column that gives the source label (e.g. dx)",
        )

    @extend_schema(responses=ImportBatchOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=import_batch_list(), serializer_class=ImportBatchOutputSerializer
        )

    @extend_schema(request=InputSerializer, responses={202: ImportBatchOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = import_batch_request(
            upload=data.validated_data["file"],
            source_name=data.validated_data["source"],
            trusted=data.validated_data["trusted"],
            map_file=data.validated_data.get("map_file"),
            metadata_file=data.validated_data.get("metadata"),
            unmapped=data.validated_data["unmapped"],
            label_column=data.validated_data["label_column"],
            created_by=request.user,
        )
        batch = import_batch_list().get(pk=batch.pk)
        return Response(ImportBatchOutputSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ImportBatchDetailApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=ImportBatchOutputSerializer)
    def get(self, request, batch_id: int):
        return Response(ImportBatchOutputSerializer(get_object_or_404(import_batch_list(), pk=batch_id)).data)


class ImportBatchRetryApi(APIView):
    """Queue a failed or cancelled import again; what it imported before is not imported twice."""

    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={202: ImportBatchOutputSerializer})
    def post(self, request, batch_id: int):
        batch = job_retry(job=get_object_or_404(import_batch_list(), pk=batch_id), actor=request.user)
        batch = import_batch_list().get(pk=batch.pk)
        return Response(ImportBatchOutputSerializer(batch).data, status=status.HTTP_202_ACCEPTED)
