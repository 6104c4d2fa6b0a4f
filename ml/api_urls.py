from django.urls import path

from ml.api.label_issues import LabelIssueDismissApi, LabelIssueListApi
from ml.api.predict import PredictApi
from ml.api.runs import (
    ModelVersionDetailApi,
    ModelVersionListApi,
    ModelVersionPromoteApi,
    ModelVersionScoreApi,
    ScoringJobCancelApi,
    ScoringJobDetailApi,
    ScoringJobListCreateApi,
    ScoringJobRetryApi,
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
    path("models/<int:model_id>/score/", ModelVersionScoreApi.as_view(), name="api-model-score"),
    path("scoring-jobs/", ScoringJobListCreateApi.as_view(), name="api-scoring-jobs"),
    path("scoring-jobs/<int:job_id>/", ScoringJobDetailApi.as_view(), name="api-scoring-job-detail"),
    path("scoring-jobs/<int:job_id>/cancel/", ScoringJobCancelApi.as_view(), name="api-scoring-job-cancel"),
    path("scoring-jobs/<int:job_id>/retry/", ScoringJobRetryApi.as_view(), name="api-scoring-job-retry"),
    path("predict/", PredictApi.as_view(), name="api-predict"),
    path("label-issues/", LabelIssueListApi.as_view(), name="api-label-issues"),
    path(
        "label-issues/<int:issue_id>/suggestion-wrong/", LabelIssueDismissApi.as_view(), name="api-label-issue-dismiss"
    ),
]
