"""Scoring jobs, run by the `scoring` queue: a model version scored on a snapshot's test split, or on every image
not excluded (when it is promoted, on demand, and for new imports by the catch-up beat task)."""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.services.jobs import JobExecution, job_claim, job_enqueue, job_running
from curation.models import Image, Snapshot
from curation.selectors.snapshots import snapshot_test_labels
from curation.services.storage import stored_files_read
from ml.models import EvaluationKind, ModelVersion, ScoringJob, ScoringScope
from ml.services.evaluations import image_scores_store, judged_labels, model_evaluation_create, scored_image_ids

logger = logging.getLogger(__name__)

SCORING_CHUNK = 64


class NoProductionModel(Exception):
    """A request that needs the production model, made while no model is in production."""

    def __init__(self, doing: str):
        super().__init__(f"There is no production model to {doing}: promote a model version first.")


def scoring_job_request(
    *, model_version: ModelVersion, snapshot: Snapshot | None = None, created_by=None
) -> tuple[ScoringJob, bool]:
    """Queue the scoring of a version on a snapshot's test split, or with no snapshot on every image not excluded
    (returns it and True); or return the job already queued or running for the same pair (and False)."""
    if snapshot is not None:
        labels = judged_labels(model_version, snapshot_test_labels(snapshot))
        if not labels:
            raise ValidationError(
                f"Snapshot {snapshot.name!r} has no test image of a class model v{model_version.pk} knows."
            )
    scope = ScoringScope.SNAPSHOT_TEST if snapshot is not None else ScoringScope.ALL_IMAGES
    same = {"model_version": model_version, "scope": scope, "snapshot": snapshot}
    existing = ScoringJob.objects.active().filter(**same).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            job = ScoringJob.objects.create(**same, created_by=created_by)
            job_enqueue(job)
    except IntegrityError:
        return ScoringJob.objects.active().get(**same), False
    return job, True


def scoring_job_request_production(*, created_by=None) -> tuple[ScoringJob, bool]:
    """Queue the scoring of every image not excluded by the production model (see ``scoring_job_request``).

    Raises NoProductionModel when no model is in production."""
    version = ModelVersion.objects.filter(is_production=True).first()
    if version is None:
        raise NoProductionModel("score the images with")
    return scoring_job_request(model_version=version, created_by=created_by)


def scoring_catch_up() -> ScoringJob | None:
    """Queue an all-images job for the production model when images arrived that it has not scored: images not
    excluded, without its score, created since its last all-images job was requested (or ever, before the first).

    Run by the beat task every ML_SCORING_CATCH_UP_SECONDS. Images a failed job left unscored wait for a person to
    retry it, or for the next import; the catch-up never requeues them in a loop. Returns the job it queued."""
    from ml.selectors.scores import latest_all_images_job, unscored_images

    version = ModelVersion.objects.filter(is_production=True).first()
    if version is None:
        return None
    latest = latest_all_images_job(version)
    if latest is not None and latest.is_active:
        return None
    waiting = unscored_images(version)
    if latest is not None:
        waiting = waiting.filter(created_at__gt=latest.created_at)
    if not waiting.exists():
        return None
    job, created = scoring_job_request(model_version=version)
    return job if created else None


def score_all_images(*, model_version: ModelVersion, execution: JobExecution | None = None) -> int:
    """Score every image not excluded that the version has not scored, ML_SCORING_CHUNK_SIZE at a time.

    Worker side. Only one chunk of pictures and probabilities is held at a time: each chunk is read by id after the
    last one (images imported meanwhile are included), predicted and bulk-stored in its own transaction, so a killed
    job keeps what it stored and a retry starts after it. Uses the worker's served copy of the model
    (``ml.inference.predictor_for``). Returns how many images were scored now."""
    from ml.inference import predictor_for
    from ml.selectors.scores import unscored_images

    chunk_size = settings.ML_SCORING_CHUNK_SIZE
    pending = unscored_images(model_version)
    total = pending.count()
    if execution is not None:
        execution.progress(done=0, total=total)
    if not total:
        return 0
    predictor = predictor_for(model_version.pk)
    done, after = 0, 0
    while chunk := list(pending.filter(pk__gt=after).values_list("pk", "sanitized")[:chunk_size]):
        after = chunk[-1][0]
        try:
            pictures = [data for _, data in stored_files_read(chunk)]
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"An image of images {chunk[0][0]}–{after} is missing from storage: {error}. The images before "
                f"it are scored; retry once the file is back."
            ) from error
        with transaction.atomic():
            image_scores_store(
                model_version=model_version,
                image_ids=[image_id for image_id, _ in chunk],
                probabilities=predictor.probabilities(pictures),
            )
        done += len(chunk)
        if execution is not None:
            execution.progress(done=done, total=max(total, done), last_image=after)
            execution.check_cancelled()
    return done


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
            if job.scope == ScoringScope.ALL_IMAGES:
                score_all_images(model_version=job.model_version, execution=execution)
            else:
                _score_snapshot_test_split(job, execution)
    except Exception:  # recorded on the job with its traceback; the worker goes on
        logger.info("scoring job %s failed; see its row", job.pk)
    job.refresh_from_db()
    return job


def _score_snapshot_test_split(job: ScoringJob, execution: JobExecution) -> None:
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
