from django.urls import path

from labeling import curator_views, views

app_name = "labeling"

urlpatterns = [
    path("review/", views.review, name="review"),
    path("review/history/", views.history, name="history"),
    path("adjudicate/", views.adjudicate, name="adjudicate"),
    path("adjudicate/undo/", views.adjudication_undo_view, name="adjudicate-undo"),
    path("adjudicate/<int:image_id>/", views.adjudicate_image, name="adjudicate-image"),
    path("curation/agreement/", views.agreement, name="agreement"),
    path("curation/images/<int:image_id>/", views.image_history, name="image-history"),
    path("curation/quality/", curator_views.quality, name="quality"),
    path("curation/quality/disagreements/", curator_views.quality_disagreements, name="quality-disagreements"),
    path("curation/rereviews/", curator_views.rereviews, name="rereviews"),
    path("curation/rereviews/request/", curator_views.rereview_request_view, name="rereview-request"),
]
