from django.urls import path

from ml import label_issue_views, views

app_name = "ml"

urlpatterns = [
    path("ml/runs/", views.runs, name="runs"),
    path("ml/runs/<int:run_id>/", views.run, name="run"),
    path("ml/runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("ml/runs/<int:run_id>/retry/", views.run_retry, name="run-retry"),
    path("ml/models/", views.models, name="models"),
    path("ml/models/score-production/", views.score_production, name="score-production"),
    path("ml/models/compare/", views.models_compare, name="models-compare"),
    path("ml/models/<int:model_id>/", views.model, name="model"),
    path("ml/models/<int:model_id>/promote/", views.model_promote, name="model-promote"),
    path("ml/models/<int:model_id>/score/", views.model_score, name="model-score"),
    path("ml/models/<int:model_id>/confusion/", views.model_confusion_cell, name="model-confusion-cell"),
    path("ml/models/<int:model_id>/files/<str:kind>", views.model_file, name="model-file"),
    path("curation/label-issues/", label_issue_views.label_issues, name="label-issues"),
    path(
        "curation/label-issues/<int:issue_id>/suggestion-wrong/",
        label_issue_views.label_issue_dismiss_page,
        name="label-issue-dismiss",
    ),
]
