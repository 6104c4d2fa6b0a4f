from django.db import models
from django.db.models import Q

from core.models import Job
from curation.models import Snapshot


class TrainingRun(Job):
    """A request to train on a snapshot: a job (see core.models.Job) run by the `training` queue's workers.

    progress_done / progress_total count epochs; progress_detail holds the stage and the last epoch's metrics.
    """

    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="training_runs")
    preset = models.CharField(max_length=20)
    config = models.JSONField(help_text="the resolved training config")
    config_hash = models.CharField(max_length=64)
    history = models.JSONField(default=list, blank=True)

    job_kind = "training"
    job_task = "ml.tasks.training_run_execute_task"
    job_queue = "training"

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

    def job_prepare_retry(self) -> None:
        # A retry starts the epochs again: the history of the failed attempt is dropped.
        self.history = []
        self.progress_detail = {}


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
