from django.urls import path

from ml.api.runs import (
    ModelVersionDetailApi,
    ModelVersionListApi,
    ModelVersionPromoteApi,
    TrainingRunCancelApi,
    TrainingRunDetailApi,
    TrainingRunListCreateApi,
    TrainingRunRetryApi,
)

urlpatterns = [
    path("training-runs/", TrainingRunListCreateApi.as_view(), name="api-training-runs"),
    path("training-runs/<int:run_id>/", TrainingRunDetailApi.as_view(), name="api-training-run-detail"),
    path("training-runs/<int:run_id>/cancel/", TrainingRunCancelApi.as_view(), name="api-training-run-cancel"),
    path("training-runs/<int:run_id>/retry/", TrainingRunRetryApi.as_view(), name="api-training-run-retry"),
    path("models/", ModelVersionListApi.as_view(), name="api-models"),
    path("models/<int:model_id>/", ModelVersionDetailApi.as_view(), name="api-model-detail"),
    path("models/<int:model_id>/promote/", ModelVersionPromoteApi.as_view(), name="api-model-promote"),
]
