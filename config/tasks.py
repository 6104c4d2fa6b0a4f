import socket

from celery import shared_task


@shared_task(name="config.tasks.worker_check_task", soft_time_limit=30, time_limit=60)
def worker_check_task() -> dict:
    """Proves a worker can reach the database: deployments and tests call it."""
    from curation.models import LabelClass

    return {"host": socket.gethostname(), "label_classes": LabelClass.objects.count()}
