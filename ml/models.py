from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import Job
from curation.models import Image, LabelClass, Snapshot


class TrainingRun(Job):
    """A request to train on a snapshot: a job (see core.models.Job) run by the `training` queue's workers.

    progress_done / progress_total count epochs; progress_detail holds the stage and the last epoch's metrics.
    """

    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="training_runs")
    preset = models.CharField(max_length=20)
    config = models.JSONField(help_text="the resolved training config")
    config_hash = models.CharField(max_length=64)
    history = models.JSONField(default=list, blank=True)
    cross_val = models.PositiveSmallIntegerField(
        default=0, help_text="folds of a cross-validation run (0: a plain run); its model is trained as a plain run's"
    )
    cross_val_report = models.JSONField(default=list, blank=True, help_text="per fold: sizes, temperature, metrics")

    job_kind = "training"
    job_task = "ml.tasks.training_run_execute_task"
    job_queue = "training"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A second request for the same snapshot and config while one is
            # queued or running returns the active one (see the service).
            models.UniqueConstraint(
                fields=["snapshot", "config_hash", "cross_val"],
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
        self.cross_val_report = []


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
    reliability_plot = models.FileField(max_length=255, blank=True)
    temperature = models.FloatField(
        default=1.0, help_text="fitted on the validation split; served: softmax(logits / T)"
    )
    calibration = models.JSONField(default=dict, blank=True, help_text="NLL and ECE before and after, reliability bins")
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


class ImageScore(models.Model):
    """What one model version says about one image: its probabilities in the version's output order.

    ``probabilities`` are the network's own (uncalibrated); ``calibrated`` apply the version's temperature and are
    what clients are served. Written for every test image at training, and by scoring jobs.
    """

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="model_scores")
    probabilities = models.JSONField()
    calibrated = models.JSONField()
    top_index = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "image"], name="image_score_one_per_model_and_image")
        ]

    def __str__(self) -> str:
        return f"v{self.model_version_id} on image {self.image_id}"


class EvaluationKind(models.TextChoices):
    OWN_TEST = "own_test", "its own snapshot's test split"
    LINEAGE_TEST = "lineage_test", "the lineage's protected test split"
    SNAPSHOT_TEST = "snapshot_test", "another snapshot's test split"


class ModelEvaluation(models.Model):
    """A version's metrics on a named set of test images, with the exact images and labels it was judged on."""

    Kind = EvaluationKind

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    kind = models.CharField(max_length=20, choices=EvaluationKind.choices)
    snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="none for the lineage"
    )
    labels = models.JSONField(help_text="image id → class code of every image judged")
    image_count = models.PositiveIntegerField()
    metrics = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"v{self.model_version_id} on {self.get_kind_display()} ({self.image_count} images)"


class ScoringScope(models.TextChoices):
    SNAPSHOT_TEST = "snapshot_test", "a snapshot's test split"
    ALL_IMAGES = "all_images", "every image not excluded"


class ScoringJob(Job):
    """Score a model version: a job (see core.models.Job) for the `scoring` queue.

    On a snapshot's test split it stores an ImageScore for each image not yet scored by that version and a
    ModelEvaluation of the split; on all images (no snapshot) it scores every image not excluded, chunk by chunk,
    and a retry goes on where it stopped.
    """

    Scope = ScoringScope

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scoring_jobs")
    scope = models.CharField(max_length=20, choices=ScoringScope.choices, default=ScoringScope.SNAPSHOT_TEST)
    snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="none: all images"
    )
    evaluation = models.OneToOneField(
        ModelEvaluation, null=True, blank=True, on_delete=models.SET_NULL, related_name="scoring_job"
    )

    job_kind = "scoring"
    job_task = "ml.tasks.scoring_job_execute_task"
    job_queue = "scoring"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "snapshot"],
                condition=Q(status__in=["queued", "running"]),
                name="scoring_job_one_active_per_model_and_snapshot",
            ),
            # NULLs are distinct in a unique index: the all-images job needs a constraint of its own.
            models.UniqueConstraint(
                fields=["model_version"],
                condition=Q(status__in=["queued", "running"], scope="all_images"),
                name="scoring_job_one_active_all_images_per_model",
            ),
            models.CheckConstraint(
                condition=Q(scope="snapshot_test", snapshot__isnull=False)
                | Q(scope="all_images", snapshot__isnull=True),
                name="scoring_job_snapshot_iff_test_scope",
            ),
        ]

    def __str__(self) -> str:
        on = self.snapshot_id if self.snapshot_id else "all images"
        return f"Scoring job #{self.pk} (v{self.model_version_id} on {on}, {self.status})"


class Prediction(models.Model):
    """A prediction served to a client, kept only with ML_KEEP_PREDICTION_IMAGES (the sanitized picture: no EXIF)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sha256 = models.CharField(max_length=64, help_text="of the bytes the client sent")
    image = models.FileField(max_length=255)
    result = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Prediction #{self.pk} by v{self.model_version_id}"


class CrossValPrediction(models.Model):
    """What a cross-validation run's models say about one snapshot item, never from a model trained on it.

    A train or val item's probabilities come from the fold model that held it out (``fold``); a test item's from the
    run's final model, trained on the train split (``fold`` null). Columns follow the run's model version's class
    map. ``calibrated`` applies the temperature of the model that made them."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="cross_val_predictions")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    split = models.CharField(max_length=8)
    fold = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1..K; null: a test item")
    given_label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    probabilities = models.JSONField()
    calibrated = models.JSONField()

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["run", "image"], name="cross_val_prediction_one_per_image")]

    def __str__(self) -> str:
        return f"run {self.run_id} on image {self.image_id} (fold {self.fold})"


class LabelIssue(models.Model):
    """A suspected label error: confident learning over a cross-validation run's probabilities doubts the label the
    snapshot gave this image. ``score`` is the label quality (0..1, lower is worse); ``rank`` 1 is the worst.

    A curator may mark the suggestion wrong (``dismissed_*``), kept with the audit log."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="label_issues")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="label_issues")
    label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+", help_text="in the snapshot")
    suggested = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()
    rank = models.PositiveIntegerField()
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dismissed_reason = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["run", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "image"], name="label_issue_one_per_run_and_image"),
            models.UniqueConstraint(fields=["run", "rank"], name="label_issue_one_per_run_and_rank"),
        ]

    def __str__(self) -> str:
        return f"Label issue #{self.rank} of run {self.run_id}: image {self.image_id}"
