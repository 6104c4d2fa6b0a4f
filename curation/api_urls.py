from django.urls import path

from curation.api.classes import LabelClassListApi
from curation.api.images import ImageDetailApi, ImageListApi

urlpatterns = [
    path("classes/", LabelClassListApi.as_view(), name="api-classes"),
    path("images/", ImageListApi.as_view(), name="api-images"),
    path("images/<int:image_id>/", ImageDetailApi.as_view(), name="api-image-detail"),
]
