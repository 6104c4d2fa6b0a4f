import socket

from celery import shared_task


@shared_task(soft_time_limit=120, time_limit=180)
def jobs_sweep_task() -> dict:
    """Run by Celery beat: fail jobs whose worker stopped, send jobs the broker missed, remove stale scratch."""
    from core.services.jobs import jobs_fail_stale, jobs_send_undispatched, scratch_dirs_sweep

    failed = jobs_fail_stale()
    return {
        "failed": [job.job_label for job in failed],
        "sent": jobs_send_undispatched(),
        "scratch_removed": scratch_dirs_sweep(),
    }


@shared_task(name="core.tasks.worker_check_task", soft_time_limit=30, time_limit=60)
def worker_check_task() -> dict:
    """Proves a worker can reach the database: deployments and tests call it."""
    from django.contrib.auth.models import Group

    return {"host": socket.gethostname(), "groups": Group.objects.count()}
