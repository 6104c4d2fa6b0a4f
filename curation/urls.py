from django.urls import path

from curation import views

app_name = "curation"

urlpatterns = [
    path("files/images/<int:image_id>/<str:kind>.jpg", views.image_file, name="image-file"),
    path("curation/", views.images, name="images"),
    path("curation/imports/new/", views.import_new, name="import-new"),
    path("curation/imports/<int:batch_id>/", views.import_batch, name="import-batch"),
    path("curation/imports/<int:batch_id>/retry/", views.import_batch_retry, name="import-batch-retry"),
    path("curation/imports/<int:batch_id>/cancel/", views.import_batch_cancel, name="import-batch-cancel"),
    path("curation/imports/<int:batch_id>/status.json", views.import_batch_status, name="import-batch-status"),
    path("curation/conflicts/resolve/", views.conflicts_resolve_page, name="conflicts-resolve"),
    path("curation/duplicates/", views.duplicates, name="duplicates"),
    path("curation/duplicates/<int:group_id>/", views.duplicate_compare, name="duplicate-compare"),
    path(
        "curation/duplicates/<int:group_id>/not-duplicates/",
        views.duplicate_not_duplicates,
        name="duplicate-not-duplicates",
    ),
    path("curation/duplicates/<int:group_id>/keep/", views.duplicate_keep_one, name="duplicate-keep-one"),
    path("snapshots/", views.snapshots, name="snapshots"),
    path("snapshots/<int:snapshot_id>/", views.snapshot, name="snapshot"),
    path("snapshots/<int:snapshot_id>/diff/<int:other_id>/", views.snapshot_diff_page, name="snapshot-diff"),
]
