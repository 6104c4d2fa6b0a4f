"""The one job lifecycle (core.services.jobs), on the real job models and the real broker."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import AuditEvent, JobStatus
from core.services.jobs import (
    JobCancelled,
    job_cancel,
    job_claim,
    job_retry,
    job_running,
    job_scratch_dir,
    jobs_fail_stale,
    jobs_send_undispatched,
    scratch_dirs_sweep,
)
from curation.models import ImportBatch, Source
from curation.services import storage
from ml.models import TrainingRun
from tests.samples import labeled_demo_snapshot


def a_batch(tmp_path, **fields) -> ImportBatch:
    folder = tmp_path / "set"
    folder.mkdir(exist_ok=True)
    fields.setdefault("path", str(folder))
    return ImportBatch.objects.create(source=Source.objects.get_or_create(name="clinic")[0], **fields)


@pytest.mark.django_db
def test_a_claim_is_atomic_and_a_redelivered_task_finds_nothing_to_do(tmp_path):
    batch = a_batch(tmp_path)

    first = job_claim(model=ImportBatch, job_id=batch.pk)
    second = job_claim(model=ImportBatch, job_id=batch.pk)

    assert first.status == JobStatus.RUNNING and first.attempts == 1 and first.worker
    assert first.heartbeat_at is not None
    assert second is None


@pytest.mark.django_db
def test_a_job_that_succeeds_fails_or_is_cancelled_records_it_and_its_scratch_folder_is_removed(tmp_path):
    done, broken, stopped = (job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk) for _ in range(3))

    with job_running(done) as execution:
        (execution.scratch / "work.txt").write_text("partial")
        execution.progress(done=3, total=4, stage="decoding")
        folder = execution.scratch
    with pytest.raises(ValueError, match="bad pixels"), job_running(broken) as execution:
        raise ValueError("bad pixels")
    with job_running(stopped) as execution:
        raise JobCancelled("asked to")

    done.refresh_from_db(), broken.refresh_from_db(), stopped.refresh_from_db()
    assert done.status == "succeeded" and done.progress == {"stage": "decoding", "done": 3, "total": 4, "fraction": 1.0}
    assert broken.status == "failed" and broken.error == "ValueError: bad pixels"
    assert "Traceback" in broken.traceback and "bad pixels" in broken.traceback
    assert stopped.status == "cancelled" and "Cancelled" in stopped.error
    assert not folder.exists() and not job_scratch_dir(broken).exists() and not job_scratch_dir(stopped).exists()


@pytest.mark.django_db
def test_cancel_stops_a_queued_job_at_once_and_asks_a_running_one_to_stop(tmp_path, curator):
    queued = a_batch(tmp_path)
    running = job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk)

    job_cancel(job=queued, actor=curator)
    job_cancel(job=running, actor=curator)
    queued.refresh_from_db(), running.refresh_from_db()

    assert queued.status == "cancelled" and queued.finished_at
    assert running.status == "running" and running.cancel_requested
    with job_running(running) as execution:
        execution.check_cancelled()
        raise AssertionError("the work goes on after a cancel")
    running.refresh_from_db()
    assert running.status == "cancelled"
    with pytest.raises(ValidationError, match=r"Import batch #\d+ has already finished \(cancelled\)"):
        job_cancel(job=queued, actor=curator)
    assert AuditEvent.objects.filter(action="job_cancelled", actor=curator).count() == 2


@pytest.mark.django_db(transaction=True)
def test_retry_queues_a_failed_job_again_as_the_same_row_and_sends_its_task(tmp_path, curator):
    batch = job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk)
    with pytest.raises(RuntimeError), job_running(batch):
        raise RuntimeError("disk gone")

    retried = job_retry(job=batch, actor=curator)
    retried.refresh_from_db()

    assert retried.pk == batch.pk and retried.status == "queued"
    assert retried.error == "" and retried.traceback == "" and retried.finished_at is None
    assert retried.dispatched_at is not None, "the task reached the broker once the retry committed"
    assert job_claim(model=ImportBatch, job_id=batch.pk).attempts == 2
    event = AuditEvent.objects.get(action="job_retried")
    assert event.actor == curator and event.before["error"] == "RuntimeError: disk gone"


@pytest.mark.django_db
def test_only_failed_or_cancelled_jobs_can_be_retried(tmp_path, curator):
    queued = a_batch(tmp_path)
    gone = a_batch(tmp_path, status=JobStatus.FAILED, path=str(tmp_path / "nowhere"))

    with pytest.raises(ValidationError, match="Only a failed or cancelled job can be retried"):
        job_retry(job=queued, actor=curator)
    with pytest.raises(ValidationError, match="does not exist any more"):
        job_retry(job=gone, actor=curator)


@pytest.mark.django_db
def test_a_stale_job_is_failed_with_its_last_heartbeat_and_its_cleanup_runs(tmp_path, settings):
    settings.DERMCURATE_JOB_STALE_SECONDS = 60
    batch = job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk)
    beat_at = timezone.now() - timezone.timedelta(minutes=5)
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat_at=beat_at)
    fresh = job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk)
    job_scratch_dir(batch).mkdir(parents=True)
    orphan = storage.content_file_write(name=storage.thumbnail_name("ab" * 32), data=b"left by a killed import")

    failed = jobs_fail_stale()

    batch.refresh_from_db()
    assert [job.pk for job in failed] == [batch.pk]
    assert batch.status == "failed"
    assert f"The worker stopped (no heartbeat since {beat_at:%Y-%m-%d %H:%M:%S} UTC)" in batch.error
    assert not job_scratch_dir(batch).exists()
    assert fresh.pk not in [job.pk for job in failed]
    # The sweep waits while another import runs (its files precede its rows) and runs once none does.
    assert storage.default_storage.exists(orphan)
    ImportBatch.objects.filter(pk=fresh.pk).update(status=JobStatus.SUCCEEDED)
    from curation.services.imports import storage_sweep_orphans

    assert storage_sweep_orphans() == 1
    assert not storage.default_storage.exists(orphan)
    assert AuditEvent.objects.filter(action="job_failed_stale", target=f"import:{batch.pk}").exists()


@pytest.mark.django_db
def test_old_scratch_folders_of_finished_jobs_are_removed(tmp_path, settings):
    settings.DERMCURATE_JOB_STALE_SECONDS = 0
    finished = a_batch(tmp_path, status=JobStatus.FAILED)
    running = job_claim(model=ImportBatch, job_id=a_batch(tmp_path).pk)
    for job in (finished, running):
        job_scratch_dir(job).mkdir(parents=True)

    assert scratch_dirs_sweep() == 1
    assert not job_scratch_dir(finished).exists() and job_scratch_dir(running).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_the_broker_never_got_is_sent_by_the_sweep(tmp_path):
    batch = a_batch(tmp_path)  # made without job_enqueue, as when the broker was down
    assert ImportBatch.objects.undispatched().filter(pk=batch.pk).exists()

    assert jobs_send_undispatched() == 1
    assert ImportBatch.objects.get(pk=batch.pk).dispatched_at is not None
    assert jobs_send_undispatched() == 0


@pytest.mark.django_db
def test_pages_and_api_never_fail_stale_runs_as_a_side_effect(tmp_path, client, api, curator, settings):
    settings.DERMCURATE_JOB_STALE_SECONDS = 1
    snapshot = labeled_demo_snapshot(
        tmp_path / "set", name="s", per_class=4, size=(64, 64), classes=[1, 2], ratios=[0.5, 0.25, 0.25]
    )
    run = TrainingRun.objects.create(snapshot=snapshot, preset="tiny", config={}, config_hash="x")
    job_claim(model=TrainingRun, job_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    client.force_login(curator)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/ml/runs/{run.pk}/").status_code == 200
        assert client.get("/ml/runs/").status_code == 200
        assert api(curator).get(f"/api/v1/training-runs/{run.pk}/").json()["status"] == "running"
        assert api(curator).get("/api/v1/training-runs/").status_code == 200

    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert [sql for sql in writes if "ml_trainingrun" in sql] == []
    assert TrainingRun.objects.get(pk=run.pk).status == "running"
