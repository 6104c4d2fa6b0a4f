"""A real worker process runs a project task on each broker, and its result is seen."""

import os

import pytest
from celery import Celery

from config.celery_app import app as project_app


def client_app(broker_url: str, result_backend: str, transport_options: dict) -> Celery:
    # Not the current app: shared tasks of later tests must keep using the project app.
    app = Celery("test-client", broker=broker_url, backend=result_backend, set_as_current=False)
    app.conf.update(
        broker_transport_options=transport_options,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
    )
    return app


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_project_task_through_the_filesystem_broker(start_worker, tmp_path, monkeypatch):
    # Celery gives the CELERY_BROKER_URL variable precedence over the broker passed in code.
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    broker_dir = tmp_path / "broker"
    worker = start_worker(queues="default", CELERY_BROKER_URL="filesystem://", CELERY_BROKER_DIR=str(broker_dir))
    options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
    app = client_app("filesystem://", f"file://{broker_dir / 'results'}", options)

    result = app.send_task("core.tasks.worker_check_task", queue="default").get(timeout=60)

    assert result["groups"] >= 4, worker.log()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_project_task_through_redis(start_worker):
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not broker_url.startswith("redis://"):
        pytest.skip("run through `make test`, which starts Redis")
    start_worker(queues="default")

    result = project_app.send_task("core.tasks.worker_check_task", queue="default").get(timeout=60)

    assert result["groups"] >= 4
