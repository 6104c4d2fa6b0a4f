"""Scoring jobs: a model version scored on any snapshot's test split, on demand, run by the `scoring` queue."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.services.jobs import JobExecution, job_claim, job_enqueue, job_running
from curation.models import Image, Snapshot
from curation.selectors.snapshots import snapshot_test_labels
from curation.services.storage import stored_files_read
from ml.models import EvaluationKind, ModelVersion, ScoringJob
from ml.services.evaluations import image_scores_store, judged_labels, model_evaluation_create, scored_image_ids

logger = logging.getLogger(__name__)

SCORING_CHUNK = 64


def scoring_job_request(*, model_version: ModelVersion, snapshot: Snapshot, created_by=None) -> tuple[ScoringJob, bool]:
    """Queue the scoring of a version on a snapshot's test split (returns it and True), or return the job already
    queued or running for the same pair (and False)."""
    labels = judged_labels(model_version, snapshot_test_labels(snapshot))
    if not labels:
        raise ValidationError(
            f"Snapshot {snapshot.name!r} has no test image of a class model v{model_version.pk} knows."
        )
    existing = ScoringJob.objects.active().filter(model_version=model_version, snapshot=snapshot).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            job = ScoringJob.objects.create(model_version=model_version, snapshot=snapshot, created_by=created_by)
            job_enqueue(job)
    except IntegrityError:
        return ScoringJob.objects.active().get(model_version=model_version, snapshot=snapshot), False
    return job, True


def score_images(*, model_version: ModelVersion, image_ids: list[int], execution: JobExecution | None = None) -> int:
    """Score the images the version has not scored yet, in chunks (one chunk of pictures in memory at a time).

    Worker side: loads the model. Returns how many images were scored now."""
    from ml.services.models import model_version_local_artifact
    from ml.training.predict import Predictor

    todo = sorted(set(image_ids) - scored_image_ids(model_version, image_ids))
    if not todo:
        return 0
    predictor = Predictor(model_version_local_artifact(model_version))
    names = dict(Image.objects.filter(pk__in=todo).values_list("pk", "sanitized"))
    done = 0
    for start in range(0, len(todo), SCORING_CHUNK):
        chunk = todo[start : start + SCORING_CHUNK]
        try:
            pictures = [data for _, data in stored_files_read((image_id, names[image_id]) for image_id in chunk)]
        except FileNotFoundError as error:
            raise FileNotFoundError(f"An image of this chunk is missing from storage: {error}.") from error
        image_scores_store(
            model_version=model_version, image_ids=chunk, probabilities=predictor.probabilities(pictures)
        )
        done += len(chunk)
        if execution is not None:
            execution.progress(done=done, total=len(todo))
            execution.check_cancelled()
    return done


def scoring_job_execute(*, job_id: int) -> ScoringJob | None:
    """Claim and run a scoring job; None when it is not queued (a redelivered task)."""
    job = job_claim(model=ScoringJob, job_id=job_id)
    if job is None:
        return None
    try:
        with job_running(job) as execution:
            labels = judged_labels(job.model_version, snapshot_test_labels(job.snapshot))
            execution.progress(done=0, total=len(labels))
            score_images(model_version=job.model_version, image_ids=list(labels), execution=execution)
            with transaction.atomic():
                evaluation = model_evaluation_create(
                    model_version=job.model_version,
                    kind=EvaluationKind.SNAPSHOT_TEST,
                    snapshot=job.snapshot,
                    labels=labels,
                )
                ScoringJob.objects.filter(pk=job.pk).update(evaluation=evaluation)
                execution.succeed()
    except Exception:  # recorded on the job with its traceback; the worker goes on
        logger.info("scoring job %s failed; see its row", job.pk)
    job.refresh_from_db()
    return job
