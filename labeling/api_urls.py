from django.urls import path

from labeling.api.rereview import RereviewListCreateApi
from labeling.api.reviews import (
    AdjudicationCreateApi,
    AdjudicationUndoApi,
    ReferenceImagesApi,
    ReviewChangeApi,
    ReviewListCreateApi,
    ReviewQueueNextApi,
    ReviewQueueOpenApi,
    ReviewQueueSkipApi,
    ReviewUndoApi,
)
from labeling.api.suggestions import ReviewSuggestionApi

urlpatterns = [
    path("reviews/", ReviewListCreateApi.as_view(), name="api-reviews"),
    path("reviews/change/", ReviewChangeApi.as_view(), name="api-review-change"),
    path("reviews/undo/", ReviewUndoApi.as_view(), name="api-review-undo"),
    path("reviews/suggestion/", ReviewSuggestionApi.as_view(), name="api-review-suggestion"),
    path("review-queue/next/", ReviewQueueNextApi.as_view(), name="api-review-queue-next"),
    path("review-queue/<int:image_id>/open/", ReviewQueueOpenApi.as_view(), name="api-review-queue-open"),
    path("review-queue/<int:image_id>/skip/", ReviewQueueSkipApi.as_view(), name="api-review-queue-skip"),
    path("reference-images/", ReferenceImagesApi.as_view(), name="api-reference-images"),
    path("rereviews/", RereviewListCreateApi.as_view(), name="api-rereviews"),
    path("adjudications/", AdjudicationCreateApi.as_view(), name="api-adjudications"),
    path("adjudications/undo/", AdjudicationUndoApi.as_view(), name="api-adjudication-undo"),
]
