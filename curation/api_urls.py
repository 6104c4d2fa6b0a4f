from django.urls import path

from curation.api.classes import LabelClassListApi
from curation.api.images import ImageDetailApi, ImageListApi
from curation.api.imports import ImportBatchDetailApi, ImportBatchListCreateApi, ImportBatchRetryApi
from curation.api.snapshots import (
    SnapshotArchiveApi,
    SnapshotDetailApi,
    SnapshotDiffApi,
    SnapshotExportApi,
    SnapshotListCreateApi,
)

urlpatterns = [
    path("classes/", LabelClassListApi.as_view(), name="api-classes"),
    path("images/", ImageListApi.as_view(), name="api-images"),
    path("images/<int:image_id>/", ImageDetailApi.as_view(), name="api-image-detail"),
    path("imports/", ImportBatchListCreateApi.as_view(), name="api-imports"),
    path("imports/<int:batch_id>/", ImportBatchDetailApi.as_view(), name="api-import-detail"),
    path("imports/<int:batch_id>/retry/", ImportBatchRetryApi.as_view(), name="api-import-retry"),
    path("snapshots/", SnapshotListCreateApi.as_view(), name="api-snapshots"),
    path("snapshots/<int:snapshot_id>/", SnapshotDetailApi.as_view(), name="api-snapshot-detail"),
    path("snapshots/<int:snapshot_id>/export/", SnapshotExportApi.as_view(), name="api-snapshot-export"),
    path("snapshots/<int:snapshot_id>/archive/", SnapshotArchiveApi.as_view(), name="api-snapshot-archive"),
    path("snapshots/<int:snapshot_id>/diff/<int:other_id>/", SnapshotDiffApi.as_view(), name="api-snapshot-diff"),
]
