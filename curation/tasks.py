from celery import shared_task

# Imports of the whole Kaggle set take a while on small machines.
IMPORT_SOFT_TIME_LIMIT = 6 * 3600


@shared_task(soft_time_limit=IMPORT_SOFT_TIME_LIMIT, time_limit=IMPORT_SOFT_TIME_LIMIT + 300)
def import_batch_run_task(batch_id: int) -> dict | None:
    """Run an uploaded import batch. A redelivered task finds the batch claimed and does nothing."""
    from django.core.exceptions import ValidationError

    from curation.services.imports import import_batch_claim, import_batch_run

    batch = import_batch_claim(batch_id=batch_id)
    if batch is None:
        return None
    try:
        return import_batch_run(batch=batch).as_dict()
    except ValidationError:
        return None  # the batch row holds the reason for the curator
