from celery import shared_task

# Long enough for the B5 recipe on one GPU; the soft limit lets the run record its failure.
TRAINING_SOFT_TIME_LIMIT = 48 * 3600


@shared_task(soft_time_limit=TRAINING_SOFT_TIME_LIMIT, time_limit=TRAINING_SOFT_TIME_LIMIT + 600, acks_late=True)
def training_run_execute_task(run_id: int) -> str | None:
    """Train one run. A redelivered task finds the run no longer queued and does nothing."""
    from ml.services.runs import training_run_execute

    run = training_run_execute(run_id=run_id)
    return run.status if run else None
