from django.contrib import admin

from accounts.admin import CuratorReadOnlyAdmin
from ml.models import ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "snapshot", "preset", "status", "created_at", "finished_at")
    list_filter = ("status", "preset")


@admin.register(ModelVersion)
class ModelVersionAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "snapshot", "is_production", "artifact_sha256", "created_at")
