from django.urls import path

from labeling.api.reviews import (
    AdjudicationCreateApi,
    ReviewListCreateApi,
    ReviewQueueNextApi,
    ReviewQueueSkipApi,
    ReviewUndoApi,
)

urlpatterns = [
    path("reviews/", ReviewListCreateApi.as_view(), name="api-reviews"),
    path("reviews/undo/", ReviewUndoApi.as_view(), name="api-review-undo"),
    path("review-queue/next/", ReviewQueueNextApi.as_view(), name="api-review-queue-next"),
    path("review-queue/<int:image_id>/skip/", ReviewQueueSkipApi.as_view(), name="api-review-queue-skip"),
    path("adjudications/", AdjudicationCreateApi.as_view(), name="api-adjudications"),
]
