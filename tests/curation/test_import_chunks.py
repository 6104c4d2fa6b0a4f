"""One import split into chunks that several real Celery workers take; the batch stays one batch."""

import time

import pytest

from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, ImageSource, ImportBatch, ImportChunk
from curation.services.imports import import_chunk_execute
from tests.samples import lesion_jpeg, write_zip

FILES = 12
FILES_PER_CHUNK = 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_one_batchs_chunks_and_a_chunk_run_again_does_nothing(
    client, curator, start_worker, tmp_path
):
    settings_env = {"DERMCURATE_IMPORT_FILES_PER_CHUNK": str(FILES_PER_CHUNK), "DERMCURATE_IMPORT_WORKERS": "1"}
    workers = [start_worker(queues="default", **settings_env) for _ in range(2)]
    archive = write_zip(
        tmp_path / "clinic.zip",
        {f"{KAGGLE_FOLDERS[n % 11]}/p{n}.jpg": lesion_jpeg(n % 11, seed=n) for n in range(FILES)},
    )
    client.force_login(curator)

    with archive.open("rb") as handle:
        response = client.post("/curation/imports/new/", {"source": "clinic", "zip": handle, "unmapped": "fail"})
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status in (ImportBatch.Status.SUCCEEDED, ImportBatch.Status.FAILED):
            break
        time.sleep(0.5)

    logs = "".join(worker.log() for worker in workers)
    assert batch.status == ImportBatch.Status.SUCCEEDED, batch.error + logs
    chunks = list(ImportChunk.objects.filter(batch=batch).order_by("index"))
    assert [chunk.index for chunk in chunks] == list(range(FILES // FILES_PER_CHUNK))
    assert {chunk.status for chunk in chunks} == {ImportChunk.Status.SUCCEEDED}
    assert sum(chunk.files_ok for chunk in chunks) == FILES
    # Both workers took chunks: the batch's own worker and the other one (host:pid of each).
    assert len({chunk.worker for chunk in chunks}) >= 2, [chunk.worker for chunk in chunks]
    assert (ImportBatch.objects.count(), batch.imported, Image.objects.count()) == (1, FILES, FILES)
    assert set(ImageSource.objects.values_list("batch_id", flat=True)) == {batch.pk}

    # A redelivered chunk task finds its chunk done (and its batch finished): nothing changes.
    assert import_chunk_execute(chunk_id=chunks[0].pk) is False
    assert (Image.objects.count(), ImageSource.objects.count()) == (FILES, FILES)
    chunks[0].refresh_from_db()
    assert (chunks[0].status, chunks[0].attempts) == (ImportChunk.Status.SUCCEEDED, 1)
