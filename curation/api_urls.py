from django.urls import path

from curation.api.classes import LabelClassListApi

urlpatterns = [
    path("classes/", LabelClassListApi.as_view(), name="api-classes"),
]
