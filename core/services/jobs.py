"""The one lifecycle of every long job: enqueue, claim, heartbeat, progress, cancel, finish, retry.

A job is a row (a concrete `core.models.Job`) made in a request and handed to a
Celery task by its primary key once the transaction commits. The task claims
it atomically (a redelivered task finds it claimed and does nothing) and runs
the work inside `job_running`, which beats a heartbeat from a thread, gives the
work a scratch folder, records the outcome (with the traceback of a failure)
and always removes the scratch folder. Jobs whose worker died are failed by
`jobs_fail_stale`, which a beat task runs, never by a page view.
"""

import logging
import os
import shutil
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Job, JobStatus
from core.services.audit import audit_record

logger = logging.getLogger(__name__)

# How often a running job reads its cancel flag back from the database.
CANCEL_CHECK_SECONDS = 2.0


class JobCancelled(Exception):
    """Raised inside a job's work when a curator asked it to stop."""


class JobQueueUnavailable(Exception):
    """The broker does not answer, so no job can be started now (the API answers 503)."""

    retry_after = 30

    def __init__(self, reason: str = ""):
        super().__init__(
            "Job queue unavailable: the broker does not answer, so nothing was started. "
            "Try again once it is back." + (f" ({reason})" if reason else "")
        )


def job_models() -> list[type[Job]]:
    """Every concrete job model of the project (ImportBatch, TrainingRun, …)."""
    return [model for model in apps.get_models() if issubclass(model, Job)]


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_scratch_dir(job: Job) -> Path:
    return Path(settings.DERMCURATE_JOB_SCRATCH_DIR) / f"{job.job_kind}-{job.pk}"


def describe_error(error: BaseException) -> str:
    """One line a curator can act on."""
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    if type(error).__name__ == "SoftTimeLimitExceeded":
        return "It ran past its time limit and was stopped."
    if isinstance(error, OSError) and error.errno == 28:
        return f"No space left on the device ({error.filename or 'storage'})."
    return f"{type(error).__name__}: {error}"


# --- Dispatch ------------------------------------------------------------------------------------


def job_queue_check() -> None:
    """Raise JobQueueUnavailable unless the broker answers now; call it before making a job's row.

    A request that starts a job then fails whole, leaving no row. Should the broker
    go away in the moment between this check and the send, the row stays queued
    and the beat task sends it once the broker is back (jobs_send_undispatched).
    """
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=2)
    except Exception as error:  # the broker's errors vary by transport
        raise JobQueueUnavailable(type(error).__name__) from error


def job_enqueue(job: Job) -> None:
    """Send the job's task once the current transaction commits (the worker must find the row)."""
    transaction.on_commit(lambda: job_send(job))


def job_send(job: Job) -> bool:
    """Hand the job to the broker now; False (and the row stays queued, undispatched) when it is down.

    The beat task sends undispatched jobs again, so a job made while the broker
    was away starts once it is back.
    """
    from celery import current_app

    try:
        current_app.send_task(
            job.job_task,
            args=[job.pk],
            queue=job.job_queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        )
    except Exception:  # the broker's errors vary by transport (kombu, redis, OSError)
        logger.warning("could not send %s to the job queue; it stays queued", job.job_label, exc_info=True)
        return False
    type(job).objects.filter(pk=job.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    return True


def jobs_send_undispatched() -> int:
    sent = 0
    for model in job_models():
        for job in model.objects.undispatched().order_by("pk"):
            sent += job_send(job)
    return sent


# --- Claim and run -------------------------------------------------------------------------------


def job_claim(*, model: type[Job], job_id: int) -> Job | None:
    """Move a queued job to running atomically; None when it is not queued (a redelivered task)."""
    now = timezone.now()
    claimed = model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        worker=this_worker(),
        attempts=F("attempts") + 1,
        cancel_requested=False,
    )
    if not claimed:
        logger.info("%s %s is not queued; nothing to do", model._meta.label, job_id)
        return None
    return model.objects.get(pk=job_id)


class _Heartbeat(threading.Thread):
    """Beats while the work runs (even through a long first compile), in its own connection."""

    def __init__(self, job: Job):
        super().__init__(name=f"heartbeat-{job.job_label}", daemon=True)
        self.model, self.job_id = type(job), job.pk
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.DERMCURATE_JOB_HEARTBEAT_SECONDS):
                try:
                    self.model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # a database blip must not kill the beat; the next one retries
                    logger.warning("heartbeat of %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


@dataclass
class JobExecution:
    """What the work of a running job uses: its scratch folder, progress, and the cancel flag."""

    job: Job
    scratch: Path
    finished: bool = False
    _checked_at: float = 0.0
    _cancel: bool = False
    _detail: dict = field(default_factory=dict)

    def progress(
        self, done: int | None = None, total: int | None = None, *, fields: dict | None = None, **detail
    ) -> None:
        """Record progress (and beat) in one UPDATE: done / total, any details the job's page shows, and
        `fields`, columns of the job's own model written with it."""
        fields = {**(fields or {}), "heartbeat_at": timezone.now()}
        if done is not None:
            fields["progress_done"] = self.job.progress_done = max(0, int(done))
        if total is not None:
            fields["progress_total"] = self.job.progress_total = max(0, int(total))
        if detail:
            self._detail = {**self.job.progress_detail, **detail}
            fields["progress_detail"] = self.job.progress_detail = self._detail
        type(self.job).objects.filter(pk=self.job.pk).update(**fields)

    def should_stop(self) -> bool:
        """Whether a cancel was requested (read at most every CANCEL_CHECK_SECONDS)."""
        now = timezone.now().timestamp()
        if not self._cancel and now - self._checked_at >= CANCEL_CHECK_SECONDS:
            self._checked_at = now
            self._cancel = type(self.job).objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self._cancel

    def check_cancelled(self) -> None:
        if self.should_stop():
            raise JobCancelled(f"{self.job.job_label} was cancelled")

    def succeed(self) -> None:
        """Mark the job succeeded now: call it inside the transaction that stores its results."""
        _finish(self.job, JobStatus.SUCCEEDED)
        self.finished = True


def _finish(job: Job, status: str, *, error: str = "", trace: str = "") -> None:
    now = timezone.now()
    updated = (
        type(job)
        .objects.filter(pk=job.pk, status=JobStatus.RUNNING)
        .update(status=status, error=error, traceback=trace, finished_at=now, heartbeat_at=now)
    )
    if not updated:
        logger.warning("%s was no longer running when it finished as %s", job.job_label, status)
    job.status, job.error, job.traceback, job.finished_at = status, error, trace, now


@contextmanager
def job_running(job: Job) -> Iterator[JobExecution]:
    """Run a claimed job's work: heartbeat, scratch folder, outcome recorded whatever happens.

    A cancellation (JobCancelled) ends the job as cancelled and is not raised
    further; any other error ends it as failed, with its traceback, and is raised
    again for the caller. The scratch folder is removed in every case.
    """
    scratch = job_scratch_dir(job)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    heartbeat = _Heartbeat(job)
    heartbeat.start()
    execution = JobExecution(job=job, scratch=scratch)
    try:
        yield execution
    except JobCancelled:
        _finish(job, JobStatus.CANCELLED, error="Cancelled by a curator; what was done so far is kept.")
    except BaseException as error:
        logger.exception("%s failed", job.job_label)
        _finish(job, JobStatus.FAILED, error=describe_error(error), trace=traceback.format_exc())
        raise
    else:
        if not execution.finished:
            _finish(job, JobStatus.SUCCEEDED)
    finally:
        heartbeat.stop()
        shutil.rmtree(scratch, ignore_errors=True)


# --- Cancel and retry ----------------------------------------------------------------------------


@transaction.atomic
def job_cancel(*, job: Job, actor=None) -> Job:
    """A queued job is cancelled at once; a running one stops at its next check."""
    locked = type(job).objects.select_for_update().get(pk=job.pk)
    if locked.status == JobStatus.QUEUED:
        locked.status = JobStatus.CANCELLED
        locked.finished_at = timezone.now()
        locked.error = "Cancelled before it started."
        locked.save(update_fields=["status", "finished_at", "error"])
    elif locked.status == JobStatus.RUNNING:
        locked.cancel_requested = True
        locked.save(update_fields=["cancel_requested"])
    else:
        raise ValidationError(f"{locked.job_title} has already finished ({locked.status}).")
    audit_record(actor=actor, action="job_cancelled", target=locked.job_label, after={"status": locked.status})
    return locked


@transaction.atomic
def job_retry(*, job: Job, actor=None) -> Job:
    """Queue a failed or cancelled job again, as the same row (its attempts are counted)."""
    locked = type(job).objects.select_for_update().get(pk=job.pk)
    if not locked.can_retry:
        raise ValidationError(f"Only a failed or cancelled job can be retried; {locked.job_title} is {locked.status}.")
    job_queue_check()
    before = {"status": locked.status, "error": locked.error, "attempts": locked.attempts}
    locked.job_prepare_retry()
    locked.status = JobStatus.QUEUED
    locked.error = locked.traceback = locked.worker = ""
    locked.started_at = locked.finished_at = locked.heartbeat_at = locked.dispatched_at = None
    locked.cancel_requested = False
    locked.progress_done = 0
    try:
        with transaction.atomic():
            locked.save()
    except IntegrityError:
        raise ValidationError(
            f"{locked.job_title} cannot be retried: the same job is already queued or running."
        ) from None
    audit_record(actor=actor, action="job_retried", target=locked.job_label, before=before, after={"status": "queued"})
    job_enqueue(locked)
    return locked


# --- The worker side's sweep ---------------------------------------------------------------------


def jobs_fail_stale() -> list[Job]:
    """Fail every running job whose heartbeat is older than DERMCURATE_JOB_STALE_SECONDS, then clean up after it."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.DERMCURATE_JOB_STALE_SECONDS)
    failed: list[Job] = []
    for model in job_models():
        for job in model.objects.stale(cutoff=cutoff):
            since = job.heartbeat_at or job.started_at
            error = (
                f"The worker stopped (no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC): it was killed, ran out "
                f"of memory or its machine went down. Retry to run it again."
            )
            with transaction.atomic():
                updated = model.objects.filter(
                    pk=job.pk, status=JobStatus.RUNNING, heartbeat_at=job.heartbeat_at
                ).update(status=JobStatus.FAILED, finished_at=now, error=error)
                if updated:
                    audit_record(actor=None, action="job_failed_stale", target=job.job_label, after={"error": error})
            if updated:
                job.refresh_from_db()
                failed.append(job)
    for job in failed:
        logger.warning("%s failed: its worker stopped beating", job.job_label)
        try:
            job.job_cleanup()
        except Exception:  # one job's cleanup must not stop the sweep of the others
            logger.exception("cleanup of %s failed", job.job_label)
        shutil.rmtree(job_scratch_dir(job), ignore_errors=True)
    return failed


def scratch_dirs_sweep() -> int:
    """Remove scratch folders left on this machine by jobs that are no longer running."""
    root = Path(settings.DERMCURATE_JOB_SCRATCH_DIR)
    if not root.is_dir():
        return 0
    running = {job.job_label.replace(":", "-") for model in job_models() for job in model.objects.running()}
    # A folder made a moment ago may belong to a job claimed after the query above.
    settled = timezone.now().timestamp() - settings.DERMCURATE_JOB_STALE_SECONDS
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in running and folder.stat().st_mtime < settled:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
