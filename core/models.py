"""The audit log and the job lifecycle that every long task of every app is built on."""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")

    def about_image(self, image_id: int):
        return self.filter(image_id=image_id)


class AuditEvent(models.Model):
    """Append-only: who did what, when, why, and the state before and after.

    Refused for UPDATE and DELETE here and by database triggers (see migrations).
    `image_id` is the image the event concerns, when there is one; a plain id, not a
    foreign key, because core sits below the app that owns images.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=40, db_index=True)
    image_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target = models.CharField(max_length=100, blank=True, help_text='"model:pk" of what changed')
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, help_text="why, in the actor's words")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def running(self):
        return self.filter(status=JobStatus.RUNNING)

    def stale(self, *, cutoff):
        """Running jobs whose worker has not beaten since `cutoff`."""
        return self.running().filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))

    def undispatched(self):
        """Queued jobs whose task never reached the broker (it was down when they were made)."""
        return self.filter(status=JobStatus.QUEUED, dispatched_at__isnull=True)


class Job(models.Model):
    """A request row for long work, claimed and run by a Celery worker.

    QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED. The services in
    `core.services.jobs` are the only writers of these fields: an atomic claim, a
    heartbeat while the work runs, progress, cancellation, errors with their
    traceback, a scratch folder removed at the end, and retry. A beat task fails
    running jobs whose heartbeat went stale and calls `job_cleanup`.

    A concrete job names its Celery task (`job_task`, which takes the job's pk)
    and its queue, and may override `job_cleanup` and `job_prepare_retry`.
    """

    Status = JobStatus

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="when its task reached the broker")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process running it")
    attempts = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_detail = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    objects = JobQuerySet.as_manager()

    job_kind: ClassVar[str] = "job"
    job_task: ClassVar[str] = ""
    job_queue: ClassVar[str] = "default"

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status in (JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def progress_fraction(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        return min(1.0, self.progress_done / self.progress_total) if self.progress_total else 0.0

    @property
    def progress(self) -> dict:
        """What pages and the API show: done / total, the fraction, and the job's own details."""
        return {
            **self.progress_detail,
            "done": self.progress_done,
            "total": self.progress_total,
            "fraction": round(self.progress_fraction, 4),
        }

    @property
    def job_label(self) -> str:
        """A stable machine name: "import:12"."""
        return f"{self.job_kind}:{self.pk}"

    @property
    def job_title(self) -> str:
        """What people read: "Import batch #12"."""
        return f"{str(self._meta.verbose_name).capitalize()} #{self.pk}"

    def job_cleanup(self) -> None:
        """Free what a job left behind after its worker stopped (beyond its scratch folder)."""

    def job_prepare_retry(self) -> None:
        """Check (raise ValidationError) and reset what a retry needs beyond the lifecycle fields."""
