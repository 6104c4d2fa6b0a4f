import base64

from celery import shared_task
from celery.signals import worker_ready

# Long enough for the B5 recipe on one GPU; the soft limit lets the run record its failure.
TRAINING_SOFT_TIME_LIMIT = 48 * 3600
SCORING_SOFT_TIME_LIMIT = 6 * 3600
PREDICT_SOFT_TIME_LIMIT = 60


@shared_task(soft_time_limit=TRAINING_SOFT_TIME_LIMIT, time_limit=TRAINING_SOFT_TIME_LIMIT + 600, acks_late=True)
def training_run_execute_task(run_id: int) -> str | None:
    """Train one run. A redelivered task finds the run no longer queued and does nothing."""
    from ml.services.runs import training_run_execute

    run = training_run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(soft_time_limit=SCORING_SOFT_TIME_LIMIT, time_limit=SCORING_SOFT_TIME_LIMIT + 300, acks_late=True)
def scoring_job_execute_task(job_id: int) -> str | None:
    """Run one scoring job (a snapshot's test split, or every image); a redelivered task does nothing."""
    from ml.services.scoring import scoring_job_execute

    job = scoring_job_execute(job_id=job_id)
    return job.status if job else None


@shared_task(soft_time_limit=60, time_limit=90)
def scoring_catch_up_task() -> int | None:
    """Beat: queue the scoring of newly imported images by the production model (see ``scoring_catch_up``).
    Idempotent: while an all-images job is queued or running, nothing more is queued."""
    from ml.services.scoring import scoring_catch_up

    job = scoring_catch_up()
    return job.pk if job else None


@shared_task(soft_time_limit=PREDICT_SOFT_TIME_LIMIT, time_limit=PREDICT_SOFT_TIME_LIMIT + 30)
def predict_task(version_id: int, image_base64: str) -> list[float]:
    """Uncalibrated probabilities of one sanitized picture (the web process calibrates and answers). Idempotent:
    nothing is written."""
    from ml.inference import probabilities_for

    return probabilities_for(version_id, base64.b64decode(image_base64))


@worker_ready.connect
def _preload_production_model(sender=None, **kwargs) -> None:
    # An inference worker loads the production model before its first request, not during it.
    # The sender is the worker's consumer; a preload failure is logged and the first request retries it.
    queues = {queue.name for queue in getattr(getattr(sender, "task_consumer", None), "queues", [])}
    if "inference" in queues:
        import logging

        from ml.inference import preload_production_model

        try:
            preload_production_model()
        except Exception:  # a missing file or database blip must not stop the worker from starting
            logging.getLogger(__name__).exception("could not preload the production model")
