from celery import shared_task

# Imports of the whole Kaggle set take a while on small machines.
IMPORT_SOFT_TIME_LIMIT = 6 * 3600


@shared_task(soft_time_limit=IMPORT_SOFT_TIME_LIMIT, time_limit=IMPORT_SOFT_TIME_LIMIT + 300, acks_late=True)
def import_batch_run_task(batch_id: int) -> dict | None:
    """Run an import batch. A redelivered task finds the batch claimed and does nothing."""
    from django.core.exceptions import ValidationError

    from curation.services.imports import import_batch_execute

    try:
        summary = import_batch_execute(batch_id=batch_id, distribute=True)
    except ValidationError:
        return None  # the batch row holds the reason for the curator
    return summary.as_dict() if summary else None


@shared_task(soft_time_limit=IMPORT_SOFT_TIME_LIMIT, time_limit=IMPORT_SOFT_TIME_LIMIT + 300, acks_late=True)
def import_chunk_run_task(chunk_id: int) -> bool:
    """Run one chunk of a running import (any worker, on any machine sharing the storage); a chunk that
    is claimed already, or whose batch is not running, is left alone."""
    from django.core.exceptions import ValidationError

    from curation.services.imports import import_chunk_execute

    try:
        return import_chunk_execute(chunk_id=chunk_id)
    except ValidationError:
        return False  # the chunk row holds the reason; its batch takes it again
