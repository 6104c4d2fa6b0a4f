from django.conf import settings
from django.db import models
from django.db.models import Q

from curation.models import Snapshot


class TrainingRunQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING])


class TrainingRun(models.Model):
    """A request to train on a snapshot; the training task claims it and
    moves it QUEUED → RUNNING → SUCCEEDED / FAILED / CANCELLED."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="training_runs")
    preset = models.CharField(max_length=20)
    config = models.JSONField(help_text="the resolved training config")
    config_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A second request for the same snapshot and config while one is
            # queued or running returns the active one (see the service).
            models.UniqueConstraint(
                fields=["snapshot", "config_hash"],
                condition=Q(status__in=["queued", "running"]),
                name="training_run_one_active_per_config",
            ),
        ]

    def __str__(self) -> str:
        return f"Training run #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class ModelVersion(models.Model):
    """A trained model with everything needed to trust, compare and reproduce it."""

    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="model_versions")
    snapshot_hash = models.CharField(max_length=64)
    config = models.JSONField()
    class_map = models.JSONField(help_text="output index → class code")
    artifact = models.FileField(max_length=255)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_size = models.PositiveBigIntegerField()
    code_version = models.CharField(max_length=64, blank=True)
    history = models.JSONField(default=list)
    metrics = models.JSONField(default=dict)
    curves_plot = models.FileField(max_length=255, blank=True)
    confusion_plot = models.FileField(max_length=255, blank=True)
    is_production = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_production"], condition=Q(is_production=True), name="model_version_one_production"
            ),
        ]

    def __str__(self) -> str:
        return f"Model v{self.pk}"

    @property
    def macro_f1(self) -> float | None:
        return self.metrics.get("macro_f1")
