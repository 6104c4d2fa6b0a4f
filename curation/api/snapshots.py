import csv
import io
import json
import zipfile
from collections.abc import Iterator

from django.core.files.storage import default_storage
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
from core.pagination import paginated_response
from curation.models import LabelClass, Snapshot
from curation.selectors.snapshots import (
    EXPORT_COLUMNS,
    snapshot_diff,
    snapshot_export_rows,
    snapshot_items,
    snapshot_list,
)
from curation.services.snapshots import snapshot_create

EXPORT_SPLITS = ("train", "val", "test", "all")
EXPORT_FORMATS = ("csv", "jsonl")


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

    def get_permissions(self):
        return [IsCurator()] if self.request.method == "POST" else [IsExporter()]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        seed = serializers.IntegerField(required=False, default=0)
        ratios = serializers.ListField(child=serializers.FloatField(), required=False, default=[0.8, 0.1, 0.1])
        classes = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        cap_per_class = serializers.IntegerField(required=False, allow_null=True, default=None)

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


class _Echo:
    """A write-only file whose writes are handed back, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


# Rows per chunk sent: one socket write per row would cost more than the rows themselves.
ROWS_PER_CHUNK = 1000


def _chunks(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= ROWS_PER_CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _csv_lines(rows: Iterator[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([row[column] for column in EXPORT_COLUMNS])


def _jsonl_lines(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, separators=(",", ":")) + "\n"


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
        rows = snapshot_export_rows(
            snapshot, split=None if split == "all" else split, image_url_prefix=image_url_prefix(request)
        )
        lines, content_type = (
            (_csv_lines(rows), "text/csv; charset=utf-8")
            if file_format == "csv"
            else (_jsonl_lines(rows), "application/jsonl; charset=utf-8")
        )
        response = StreamingHttpResponse(_chunks(lines), content_type=content_type)
        filename = f"{slugify(snapshot.name) or 'snapshot'}-{snapshot.pk}-{split}.{file_format}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Snapshot-Content-Hash"] = snapshot.content_hash
        return response


class _ZipStream(io.RawIOBase):
    """A non-seekable sink for zipfile: what is written is collected and handed out in pieces."""

    def __init__(self):
        self._pieces: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pieces.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def class_folder(index: int, name: str) -> str:
    # Two digits, so that sorting the folders by name (as Keras does) gives index order.
    return f"{index:02d}. {name.replace('/', '-')}"


def _archive(snapshot: Snapshot) -> Iterator[bytes]:
    sink = _ZipStream()
    folders = {label.pk: class_folder(label.index, label.name) for label in LabelClass.objects.all()}
    present = sorted(set(snapshot_items(snapshot).values_list("label_id", flat=True)), key=folders.__getitem__)
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["path", "image_id", "sha256", "label_code", "label_index", "split"])
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        # Every class folder in every split, empty or not: Keras then maps labels the same way in each split.
        for split in ("train", "val", "test"):
            for label_id in present:
                archive.writestr(zipfile.ZipInfo(f"{split}/{folders[label_id]}/"), b"")
        yield sink.take()
        items = snapshot_items(snapshot).values_list(
            "image_id", "image__sha256", "image__sanitized", "label_id", "label__code", "label__index", "split"
        )
        for image_id, sha256, stored_name, label_id, code, index, split in items.iterator(chunk_size=500):
            path = f"{split}/{folders[label_id]}/{sha256}.jpg"
            with default_storage.open(stored_name, "rb") as source, archive.open(path, "w") as target:
                while chunk := source.read(1 << 16):
                    target.write(chunk)
            writer.writerow([path, image_id, sha256, code, index, split])
            yield sink.take()
        archive.writestr("manifest.csv", manifest.getvalue())
        archive.writestr(
            "stats.json",
            json.dumps(
                {
                    "snapshot": snapshot.pk,
                    "name": snapshot.name,
                    "content_hash": snapshot.content_hash,
                    "seed": snapshot.seed,
                    "ratios": snapshot.ratios,
                    "stats": snapshot.stats,
                    "class_folders": [folders[pk] for pk in present],
                },
                indent=2,
            ),
        )
    yield sink.take()


class SnapshotArchiveApi(APIView):
    """A streamed zip of the sanitized images as <split>/<NN. class name>/<sha256>.jpg, with
    manifest.csv and stats.json; keras.utils.image_dataset_from_directory reads each split as it is."""

    permission_classes = [IsExporter]

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, snapshot_id: int):
        snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
        response = StreamingHttpResponse(_archive(snapshot), content_type="application/zip")
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
