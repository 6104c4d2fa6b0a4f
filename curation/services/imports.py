"""Import image folders (the Kaggle layout, at any depth) and zips, with mapping and metadata files.

1. Plan (before any row is written): every file is looked at by its first bytes; images get the
   class of their nearest class folder (or of a metadata column) and their metadata row; folders
   that match no class refuse the import (or are skipped), and what is not an image is listed.
2. The batch row holds the plan's settings; its files are split into ImportChunk jobs. Any
   worker may take a chunk (several machines share the storage); the batch's own task takes
   chunks too, and waits for those taken elsewhere, so the batch is one job from start to end.
3. In a chunk, worker processes read, decode, hash and store each file; the chunk's process
   writes the rows in bulk. Files are written before their rows, and the rows of each flush
   commit together: a rejected file, or one cut off by a killed process, leaves no row, and the
   leftovers of a killed import are swept. Running a chunk again is harmless.
4. When every chunk is done, the batch's counts come from the rows (so retries count right),
   conflicting source labels send pending images to adjudication, and near duplicates are found.
"""

import logging
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, F, Min, Sum
from django.utils import timezone

from core.services.jobs import JobExecution, job_claim, job_enqueue, job_queue_check, job_running, job_send
from curation.importing import (
    ClassIndex,
    FileEntry,
    ImportPlan,
    Metadata,
    class_map_from_file,
    class_map_from_pairs,
    folder_entries,
    metadata_parse,
    plan_import,
    zip_check,
    zip_entries,
)
from curation.models import (
    Image,
    ImageSource,
    ImportBatch,
    ImportChunk,
    LabelClass,
    RejectedFile,
    Source,
    UnmappedPolicy,
)
from curation.selectors.classes import folder_name_index
from curation.services import storage
from curation.services.images import image_mark_disputed
from curation.services.uploads import image_processing_options
from curation.signals import images_imported

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
SOURCE_NAME_MAX = Source._meta.get_field("name").max_length
# How long the batch's task waits between looks at chunks that other workers are running.
CHUNK_POLL_SECONDS = 1.0
CHUNK_MAX_ATTEMPTS = 3


@dataclass
class ImportSummary:
    batch_id: int
    imported: int = 0
    already_present: int = 0
    duplicates_exact: int = 0
    rejected: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    duplicate_groups: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        metadata = self.report.get("metadata")
        return {
            "batch": self.batch_id,
            "imported": self.imported,
            "already_present": self.already_present,
            "duplicates_exact": self.duplicates_exact,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "skipped_not_images": len(self.skipped),
            "not_imported_by_mapping": self.report.get("not_imported_by_mapping", 0),
            "folders": self.report.get("folders", []),
            "metadata": metadata,
            "duplicate_groups": self.duplicate_groups,
            "seconds": round(self.seconds, 3),
        }


# --- Settings of an import: classes, mapping, metadata -------------------------------------------


def class_index() -> ClassIndex:
    labels = list(LabelClass.objects.order_by("index"))
    known = ", ".join(f"{label.index} {label.code} ({label.name})" for label in labels)
    return ClassIndex(
        codes=tuple(label.code for label in labels),
        index_to_code={label.index: label.code for label in labels},
        aliases=folder_name_index(),
        known_text=f"Known classes: {known}.",
    )


def parse_class_map(pairs: list[str], *, map_file: bytes | None = None, map_file_name: str = "") -> dict[str, str]:
    """--map-file rows, then --map pairs on top: folder name (or label value) → class code or skip."""
    classes = class_index()
    class_map = class_map_from_file(map_file, classes, name=map_file_name or "the mapping file") if map_file else {}
    return {**class_map, **class_map_from_pairs(pairs, classes)}


def source_name_check(source_name: str) -> str:
    source_name = (source_name or "").strip()
    if not source_name:
        raise ValidationError("A source name is needed (e.g. kaggle-skin-diseases, clinic-2026).")
    if len(source_name) > SOURCE_NAME_MAX:
        raise ValidationError(
            f"The source name has {len(source_name)} characters; at most {SOURCE_NAME_MAX} are allowed.",
            code="max_length",
        )
    return source_name


def _unmapped_policy(unmapped: str) -> str:
    if unmapped not in UnmappedPolicy.values:
        raise ValidationError(f"--unmapped must be fail or skip, got {unmapped!r}.")
    return unmapped


# --- Planning ------------------------------------------------------------------------------------


def import_plan_for(
    path: Path,
    *,
    class_map: dict[str, str],
    unmapped: str = UnmappedPolicy.FAIL,
    metadata: Metadata | None = None,
    label_column: str = "",
    refuse: bool = True,
) -> ImportPlan:
    """The plan for a folder or a zip on disk (raises ValidationError when it is refused)."""
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"{path} does not exist.")
    if path.is_dir():
        return plan_import(
            folder_entries(path),
            root_name=path.name,
            classes=class_index(),
            class_map=class_map,
            unmapped=unmapped,
            metadata=metadata,
            label_column=label_column,
            refuse=refuse,
        )
    if not zipfile.is_zipfile(path):
        raise ValidationError(f"{path.name} is neither a folder nor a zip file.")
    with path.open("rb") as handle:
        return zip_plan(
            handle,
            name=path.name,
            size=path.stat().st_size,
            class_map=class_map,
            unmapped=unmapped,
            metadata=metadata,
            label_column=label_column,
            refuse=refuse,
        )


def zip_plan(
    handle,
    *,
    name: str,
    size: int,
    class_map: dict[str, str],
    unmapped: str,
    metadata: Metadata | None,
    label_column: str,
    refuse: bool = True,
) -> ImportPlan:
    """The plan for a zip (a file object): its safety checked from the central directory first."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValidationError(f"{name} is not a readable zip file ({error}).") from error
    with archive:
        zip_check(
            archive,
            zip_size=size,
            max_bytes=settings.DERMCURATE_ZIP_MAX_BYTES,
            max_ratio=settings.DERMCURATE_ZIP_MAX_RATIO,
        )
        entries: list[FileEntry] = list(zip_entries(archive))
    return plan_import(
        entries,
        root_name=Path(name).stem,
        classes=class_index(),
        class_map=class_map,
        unmapped=unmapped,
        metadata=metadata,
        label_column=label_column,
        refuse=refuse,
    )


# --- Making a batch ------------------------------------------------------------------------------


@transaction.atomic
def import_batch_create(
    *,
    source_name: str,
    trusted: bool = False,
    path: str = "",
    upload=None,
    class_map: dict[str, str] | None = None,
    unmapped: str = UnmappedPolicy.FAIL,
    metadata_bytes: bytes | None = None,
    metadata_name: str = "metadata.csv",
    label_column: str = "",
    report: dict | None = None,
    created_by=None,
) -> ImportBatch:
    source_name = source_name_check(source_name)
    source, _ = Source.objects.get_or_create(name=source_name)
    if trusted and not source.trusted:
        # --trusted marks the source trusted; leaving it out never demotes a source.
        source.trusted = True
        source.save(update_fields=["trusted"])
    batch = ImportBatch(
        source=source,
        path=path,
        class_map=class_map or {},
        unmapped=_unmapped_policy(unmapped),
        label_column=label_column,
        report=report or {},
        created_by=created_by,
    )
    if upload is not None:
        batch.upload = upload
    if metadata_bytes is not None:
        # Kept with the batch, so that a retry on any machine reads the same rows.
        batch.metadata_file.save(Path(metadata_name).name or "metadata.csv", ContentFile(metadata_bytes), save=False)
    batch.save()
    return batch


def import_batch_request(
    *,
    upload,
    source_name: str,
    trusted: bool,
    created_by,
    map_file=None,
    metadata_file=None,
    unmapped: str = UnmappedPolicy.FAIL,
    label_column: str = "",
) -> ImportBatch:
    """Plan an uploaded zip now (a refused plan is a ValidationError and leaves no row) and queue it
    for a worker (its task is sent once this transaction commits)."""
    source_name = source_name_check(source_name)
    if not zipfile.is_zipfile(upload):
        raise ValidationError(f"{upload.name} is not a zip file.")
    class_map = parse_class_map([], map_file=map_file.read(), map_file_name=map_file.name) if map_file else {}
    metadata_bytes = metadata_file.read() if metadata_file else None
    metadata = metadata_parse(metadata_bytes, name=metadata_file.name) if metadata_file else None
    upload.seek(0)
    plan = zip_plan(
        upload,
        name=upload.name,
        size=upload.size,
        class_map=class_map,
        unmapped=_unmapped_policy(unmapped),
        metadata=metadata,
        label_column=label_column,
    )
    upload.seek(0)
    job_queue_check()  # no row and no stored upload while the broker is down
    with transaction.atomic():
        batch = import_batch_create(
            source_name=source_name,
            trusted=trusted,
            path=upload.name,
            upload=upload,
            class_map=class_map,
            unmapped=unmapped,
            metadata_bytes=metadata_bytes,
            metadata_name=metadata_file.name if metadata_file else "",
            label_column=label_column,
            report=plan.as_dict(),
            created_by=created_by,
        )
        job_enqueue(batch)
    return batch


def import_batch_check_retry(*, batch: ImportBatch) -> None:
    """A retry needs what the batch imports: its uploaded zip in storage, or its folder or zip on disk."""
    if batch.upload:
        if not batch.upload.storage.exists(batch.upload.name):
            raise ValidationError(f"Import #{batch.pk} cannot be retried: its uploaded zip is gone from storage.")
    elif not Path(batch.path).exists():
        raise ValidationError(f"Import #{batch.pk} cannot be retried: {batch.path} does not exist any more.")


# --- Leftovers of killed imports -----------------------------------------------------------------


def _imports_running() -> bool:
    return ImportBatch.objects.running().exists() or ImportChunk.objects.running().exists()


def storage_sweep_orphans() -> int:
    """Delete content files that have no image row (left by a killed import).

    Files are written before their rows, so this never runs while an import (or one of its chunks)
    is running; it is left pending instead, and the next import to start runs it. Listing all of
    storage is slow on S3, so it runs only after an interrupted import.
    """
    if _imports_running():
        return 0
    pending = list(ImportBatch.objects.filter(status=ImportBatch.Status.FAILED, progress_detail__sweep_pending=True))
    known = set(Image.objects.values_list("sha256", flat=True))
    orphans = [name for sha256, name in storage.content_file_names() if sha256 not in known]
    storage.content_files_delete(orphans)
    if orphans:
        logger.info("removed %d files left by an interrupted import", len(orphans))
    for batch in pending:
        detail = {**batch.progress_detail, "sweep_pending": False}
        ImportBatch.objects.filter(pk=batch.pk).update(progress_detail=detail)
    return len(orphans)


def import_batch_stopped(*, batch: ImportBatch) -> None:
    """What the beat task runs after failing a batch (or a chunk) whose worker stopped: sweep its files
    now, or leave the sweep pending for the next import when another import is running."""
    batch.refresh_from_db(fields=["progress_detail"])
    ImportBatch.objects.filter(pk=batch.pk).update(progress_detail={**batch.progress_detail, "sweep_pending": True})
    storage_sweep_orphans()


def _sweep_if_pending() -> None:
    if ImportBatch.objects.filter(status=ImportBatch.Status.FAILED, progress_detail__sweep_pending=True).exists():
        storage_sweep_orphans()


# --- Running -------------------------------------------------------------------------------------


def import_images(
    *,
    path: Path,
    source_name: str,
    trusted: bool = False,
    class_map: dict[str, str] | None = None,
    unmapped: str = UnmappedPolicy.FAIL,
    metadata_path: Path | None = None,
    label_column: str = "",
    created_by=None,
    progress: ProgressCallback | None = None,
    workers: int = 0,
) -> ImportSummary:
    """Plan, then import a folder or zip at `path` in this process (what the command runs).

    A refused plan (unknown folders, a bad metadata or mapping file, an unsafe zip) raises
    ValidationError before any row is written.
    """
    path = Path(path)
    source_name = source_name_check(source_name)
    metadata_bytes = Path(metadata_path).read_bytes() if metadata_path else None
    metadata = metadata_parse(metadata_bytes, name=Path(metadata_path).name) if metadata_path else None
    plan = import_plan_for(
        path,
        class_map=class_map or {},
        unmapped=_unmapped_policy(unmapped),
        metadata=metadata,
        label_column=label_column,
    )
    batch = import_batch_create(
        source_name=source_name,
        trusted=trusted,
        path=str(path),
        class_map=class_map,
        unmapped=unmapped,
        metadata_bytes=metadata_bytes,
        metadata_name=Path(metadata_path).name if metadata_path else "",
        label_column=label_column,
        report=plan.as_dict(),
        created_by=created_by,
    )
    # This process runs it: the beat task must not send it to a worker as well.
    ImportBatch.objects.filter(pk=batch.pk).update(dispatched_at=timezone.now())
    return import_batch_execute(batch_id=batch.pk, progress=progress, workers=workers, plan=plan)


def import_batch_execute(
    *,
    batch_id: int,
    progress: ProgressCallback | None = None,
    workers: int = 0,
    distribute: bool = False,
    plan: ImportPlan | None = None,
) -> ImportSummary | None:
    """Claim a queued batch and run it to the end; None when it is not queued (a redelivered task).

    With `distribute`, its chunks are also sent to the job queue, for other workers to take.
    """
    batch = job_claim(model=ImportBatch, job_id=batch_id)
    if batch is None:
        return None
    return import_batch_run(batch=batch, progress=progress, workers=workers, distribute=distribute, plan=plan)


def import_batch_run(
    *,
    batch: ImportBatch,
    progress: ProgressCallback | None = None,
    workers: int = 0,
    distribute: bool = False,
    plan: ImportPlan | None = None,
) -> ImportSummary:
    """Run a claimed batch; the batch row records the outcome either way (errors are raised again)."""
    started = time.monotonic()
    summary = ImportSummary(batch_id=batch.pk)
    try:
        with job_running(batch) as execution:
            source = _local_source(batch, execution.scratch)
            _sweep_if_pending()
            chunks = _chunks_of(batch, source=source, plan=plan)
            if distribute:
                for chunk in chunks:
                    job_send(chunk)
            else:
                # This process takes them all: the beat task must not send them to a worker.
                ImportChunk.objects.filter(batch=batch, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
            _run_chunks(batch, source=source, execution=execution, progress=progress, workers=workers)
            summary = _finish_batch(batch, execution=execution, started=started)
            if batch.upload:
                # Every image is now stored on its own; the uploaded zip is no longer needed.
                batch.upload.delete(save=False)
    finally:
        seconds = time.monotonic() - started
        ImportBatch.objects.filter(pk=batch.pk, seconds__isnull=True).update(seconds=seconds)
    return summary


@dataclass(frozen=True)
class _LocalSource:
    """Where this machine reads the batch's files: a folder, or a zip on local disk."""

    root: str | None = None
    zip_path: str | None = None
    name: str = ""


def _local_source(batch: ImportBatch, scratch: Path) -> _LocalSource:
    name = Path(batch.path or (batch.upload.name if batch.upload else "")).name
    if batch.upload:
        # On a local disk, read in place; a bucket's copy is downloaded once per machine into the
        # batch's scratch folder, which every chunk worker on this machine shares.
        local = scratch / "upload.zip"
        if local.is_file():
            return _LocalSource(zip_path=str(local), name=name)
        scratch.mkdir(parents=True, exist_ok=True)
        partial = scratch / f"upload.{secrets.token_hex(4)}.part"
        try:
            found = storage.stored_file_local(name=batch.upload.name, download_to=partial)
        except FileNotFoundError as error:
            raise ValidationError(f"The uploaded zip of import #{batch.pk} is gone from storage.") from error
        if found == partial:
            partial.replace(local)
            found = local
        return _LocalSource(zip_path=str(found), name=name)
    path = Path(batch.path)
    if not path.exists():
        raise ValidationError(f"{path} does not exist.")
    if path.is_dir():
        return _LocalSource(root=str(path), name=name)
    if not zipfile.is_zipfile(path):
        raise ValidationError(f"{path.name} is neither a folder nor a zip file.")
    return _LocalSource(zip_path=str(path), name=name)


def _metadata_of(batch: ImportBatch) -> Metadata | None:
    if not batch.metadata_file:
        return None
    with batch.metadata_file.open("rb") as handle:
        return metadata_parse(handle.read(), name=Path(batch.metadata_file.name).name)


def _chunks_of(batch: ImportBatch, *, source: _LocalSource, plan: ImportPlan | None) -> list[ImportChunk]:
    """The batch's chunks: made from its plan the first time; on a retry, the unfinished ones queued again."""
    existing = list(ImportChunk.objects.filter(batch=batch).order_by("index"))
    if existing:
        ImportChunk.objects.filter(batch=batch).exclude(status=ImportChunk.Status.SUCCEEDED).update(
            status=ImportChunk.Status.QUEUED,
            error="",
            traceback="",
            worker="",
            started_at=None,
            finished_at=None,
            heartbeat_at=None,
            dispatched_at=None,
            cancel_requested=False,
        )
        return list(ImportChunk.objects.filter(batch=batch, status=ImportChunk.Status.QUEUED).order_by("index"))
    if plan is None:
        metadata = _metadata_of(batch)
        options = {
            "class_map": batch.class_map,
            "unmapped": batch.unmapped,
            "metadata": metadata,
            "label_column": batch.label_column,
        }
        if source.root:
            plan = import_plan_for(Path(source.root), **options)
        else:
            with open(source.zip_path, "rb") as handle:
                plan = zip_plan(handle, name=source.name, size=Path(source.zip_path).stat().st_size, **options)
    size = max(1, settings.DERMCURATE_IMPORT_FILES_PER_CHUNK)
    with transaction.atomic():
        chunks = ImportChunk.objects.bulk_create(
            ImportChunk(
                batch=batch,
                index=number,
                entries=[[f.path, f.label_code, f.metadata_key] for f in plan.files[start : start + size]],
                progress_total=len(plan.files[start : start + size]),
            )
            for number, start in enumerate(range(0, len(plan.files), size))
        )
        RejectedFile.objects.filter(batch=batch, kind=RejectedFile.Kind.SKIPPED).delete()
        RejectedFile.objects.bulk_create(
            RejectedFile(batch=batch, path=path, reason=reason, kind=RejectedFile.Kind.SKIPPED)
            for path, reason in plan.skipped
        )
        ImportBatch.objects.filter(pk=batch.pk).update(report=plan.as_dict(), progress_total=len(plan.files))
    return chunks


def _run_chunks(
    batch: ImportBatch,
    *,
    source: _LocalSource,
    execution: JobExecution,
    progress: ProgressCallback | None,
    workers: int,
) -> None:
    """Take queued chunks one after another; then wait for those that other workers run."""
    from curation import import_pool

    total = ImportChunk.objects.filter(batch=batch).aggregate(n=Sum("progress_total"))["n"] or 0
    execution.progress(done=_files_done(batch), total=total)
    executor = None
    try:
        while True:
            execution.check_cancelled()
            chunk = _claim_next_chunk(batch)
            if chunk is not None:
                if executor is None:
                    executor = import_pool.make_executor(
                        workers=import_pool.worker_count(workers or settings.DERMCURATE_IMPORT_WORKERS),
                        known_sha256=frozenset(Image.objects.values_list("sha256", flat=True)),
                        options=image_processing_options(),
                        root=source.root,
                        zip_path=source.zip_path,
                    )
                _chunk_work(chunk, executor=executor, batch_execution=execution, progress=progress, total=total)
                continue
            states = dict(
                ImportChunk.objects.filter(batch=batch)
                .values("status")
                .annotate(n=Count("pk"))
                .values_list("status", "n")
            )
            if set(states) <= {ImportChunk.Status.SUCCEEDED}:
                return
            failed = list(
                ImportChunk.objects.filter(
                    batch=batch, status__in=[ImportChunk.Status.FAILED, ImportChunk.Status.CANCELLED]
                )
            )
            for chunk in failed:
                if chunk.attempts >= CHUNK_MAX_ATTEMPTS:
                    raise ValidationError(f"Chunk {chunk.index} failed {chunk.attempts} times: {chunk.error}")
                # Its worker died or it failed elsewhere: take it again here.
                ImportChunk.objects.filter(pk=chunk.pk, status=chunk.status).update(
                    status=ImportChunk.Status.QUEUED, error="", traceback="", heartbeat_at=None
                )
            if not failed:
                time.sleep(CHUNK_POLL_SECONDS)
            if progress:
                progress(_files_done(batch), total)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def _claim_next_chunk(batch: ImportBatch) -> ImportChunk | None:
    for chunk_id in ImportChunk.objects.filter(batch=batch, status=ImportChunk.Status.QUEUED).order_by("index")[:5]:
        chunk = job_claim(model=ImportChunk, job_id=chunk_id.pk)
        if chunk is not None:
            return chunk
    return None


def _files_done(batch: ImportBatch) -> int:
    return ImportChunk.objects.filter(batch=batch).aggregate(n=Sum("progress_done"))["n"] or 0


def import_chunk_execute(*, chunk_id: int) -> bool:
    """Run a chunk in this worker (a chunk task sent by its batch); False when there is nothing to do
    (its batch is not running, or another worker claimed it)."""
    from curation import import_pool

    chunk = ImportChunk.objects.select_related("batch").filter(pk=chunk_id).first()
    if chunk is None or chunk.batch.status != ImportBatch.Status.RUNNING:
        return False
    chunk = job_claim(model=ImportChunk, job_id=chunk_id)
    if chunk is None:
        return False
    from core.services.jobs import job_scratch_dir

    source = _local_source(chunk.batch, job_scratch_dir(chunk.batch))
    executor = import_pool.make_executor(
        workers=import_pool.worker_count(settings.DERMCURATE_IMPORT_WORKERS),
        known_sha256=frozenset(Image.objects.values_list("sha256", flat=True)),
        options=image_processing_options(),
        root=source.root,
        zip_path=source.zip_path,
    )
    with executor:
        _chunk_work(chunk, executor=executor, batch_execution=None, progress=None, total=0)
    return True


def _chunk_work(
    chunk: ImportChunk,
    *,
    executor,
    batch_execution: JobExecution | None,
    progress: ProgressCallback | None,
    total: int,
) -> None:
    from curation import import_pool

    batch = ImportBatch.objects.select_related("source").get(pk=chunk.batch_id)
    with job_running(chunk) as execution:
        if chunk.attempts > 1:
            paths = [entry[0] for entry in chunk.entries]
            RejectedFile.objects.filter(batch=batch, kind=RejectedFile.Kind.REJECTED, path__in=paths).delete()
        writer = _ChunkWriter(batch=batch, chunk=chunk, execution=execution, metadata=_metadata_of(batch))
        done_before = _files_done(batch) - chunk.progress_done
        results = executor.map(import_pool.process_entry, [entry[0] for entry in chunk.entries], chunksize=4)
        try:
            for entry, result in zip(chunk.entries, results, strict=True):
                writer.add(entry, result)
                if writer.processed % 50 == 0:
                    if batch_execution is not None:
                        batch_execution.check_cancelled()
                    elif not ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).exists():
                        raise ValidationError(f"Import #{batch.pk} stopped; this chunk stops too.")
                    if progress:
                        progress(done_before + writer.processed, total)
            writer.flush()
        except BaseException:
            # A file write failed mid-chunk (a full disk): this chunk's unsaved files go, earlier flushes stay.
            writer.discard_unwritten()
            raise
        with transaction.atomic():
            ImportChunk.objects.filter(pk=chunk.pk).update(
                files_ok=writer.files_ok,
                rejected_count=writer.rejected_count,
                already_present=_present_elsewhere(batch, writer.shas),
                progress_done=writer.processed,
            )
            execution.succeed()
    if progress:
        progress(done_before + writer.processed, total)


def _present_elsewhere(batch: ImportBatch, shas: list[str]) -> int:
    """How many of these files (by sha256) are images another batch imported first."""
    first_rows = (
        ImageSource.objects.filter(image__sha256__in=set(shas))
        .values("image__sha256")
        .annotate(first=Min("pk"))
        .values_list("image__sha256", "first")
    )
    first_row_of = dict(first_rows)
    first_batch = dict(ImageSource.objects.filter(pk__in=first_row_of.values()).values_list("pk", "batch_id"))
    return sum(1 for sha in shas if first_batch.get(first_row_of.get(sha)) not in (batch.pk, None))


class _ChunkWriter:
    """Collects a chunk's results and writes their rows in flushes, one transaction each."""

    def __init__(self, *, batch: ImportBatch, chunk: ImportChunk, execution: JobExecution, metadata: Metadata | None):
        self.batch, self.chunk, self.execution = batch, chunk, execution
        self.metadata_rows = metadata.rows if metadata else {}
        self.labels = {label.code: label for label in LabelClass.objects.all()}
        self.new_images: dict[str, Image] = {}
        self.written_files: list[str] = []
        self.provenance: list[tuple[str, list]] = []
        self.metadata_updates: dict[str, dict] = {}
        self.rejected: list[RejectedFile] = []
        self.shas: list[str] = []
        self.processed = self.flushed = self.files_ok = self.rejected_count = 0

    def add(self, entry: list, result) -> None:
        from curation.imaging import ImageRejected
        from curation.import_pool import StoredImage

        path, label_code, metadata_key = entry
        self.processed += 1
        row = self.metadata_rows.get(metadata_key) if metadata_key else None
        if isinstance(result, ImageRejected):
            self.rejected.append(RejectedFile(batch=self.batch, path=path, reason=result.reason))
            self.rejected_count += 1
        else:
            sha = result.sha256
            self.files_ok += 1
            self.shas.append(sha)
            if isinstance(result, StoredImage) and sha not in self.new_images:
                self.written_files += [result.original_name, result.sanitized_name, result.thumbnail_name]
                self.new_images[sha] = Image(
                    sha256=sha,
                    original=result.original_name,
                    sanitized=result.sanitized_name,
                    thumbnail=result.thumbnail_name,
                    original_format=result.original_format,
                    file_size=result.file_size,
                    width=result.width,
                    height=result.height,
                    sanitized_width=result.sanitized_width,
                    sanitized_height=result.sanitized_height,
                    phash=result.phash,
                    dhash=result.dhash,
                    fingerprint=result.fingerprint,
                    source_label=self.labels.get(label_code),
                    metadata=row or {},
                )
            elif row:
                self.metadata_updates[sha] = {**self.metadata_updates.get(sha, {}), **row}
            self.provenance.append((sha, entry))
        if len(self.provenance) + len(self.rejected) >= settings.DERMCURATE_IMPORT_CHUNK_SIZE:
            self.flush()

    def flush(self) -> None:
        try:
            with transaction.atomic():
                self._write_rows()
        except BaseException:
            self.discard_unwritten()
            raise
        new, processed = len(self.new_images), self.processed - self.flushed
        self.new_images, self.written_files, self.provenance, self.rejected = {}, [], [], []
        self.metadata_updates, self.flushed = {}, self.processed
        # What the batch's page shows while it runs; the final counts come from the rows.
        ImportBatch.objects.filter(pk=self.batch.pk).update(
            imported=F("imported") + new, progress_done=F("progress_done") + processed
        )
        self.execution.check_cancelled()

    def discard_unwritten(self) -> None:
        """Delete the files whose rows did not commit (a failed flush, a full disk mid-chunk):
        they must not stay behind."""
        stored = set(Image.objects.filter(sha256__in=list(self.new_images)).values_list("sha256", flat=True))
        storage.content_files_delete(
            [n for n in self.written_files if n.rsplit("/", 1)[-1].split(".")[0] not in stored]
        )
        self.written_files = []

    def _write_rows(self) -> None:
        # ignore_conflicts: a concurrent import (or chunk) of the same bytes may have won the race.
        Image.objects.bulk_create(list(self.new_images.values()), ignore_conflicts=True)
        shas = {sha for sha, _ in self.provenance}
        image_ids = dict(Image.objects.filter(sha256__in=shas).values_list("sha256", "id"))
        ImageSource.objects.bulk_create(
            [
                ImageSource(
                    image_id=image_ids[sha],
                    batch=self.batch,
                    source_id=self.batch.source_id,
                    source_label=self.labels.get(label_code),
                    source_path=path,
                )
                for sha, (path, label_code, _) in self.provenance
            ],
            ignore_conflicts=True,
        )
        if self.metadata_updates:
            present = list(
                Image.objects.filter(sha256__in=list(self.metadata_updates)).only("pk", "sha256", "metadata")
            )
            for image in present:
                image.metadata = {**image.metadata, **self.metadata_updates[image.sha256]}
            Image.objects.bulk_update(present, ["metadata"])
        RejectedFile.objects.bulk_create(self.rejected)
        ImportChunk.objects.filter(pk=self.chunk.pk).update(
            progress_done=self.processed, heartbeat_at=timezone.now(), files_ok=self.files_ok
        )


def _finish_batch(batch: ImportBatch, *, execution: JobExecution, started: float) -> ImportSummary:
    """Counts from the rows, conflicts sent to adjudication, near duplicates found; the batch succeeds."""
    from curation.services.duplicates import duplicates_refresh

    rows = ImageSource.objects.filter(batch=batch)
    image_ids = set(rows.values_list("image_id", flat=True))
    first_rows = (
        ImageSource.objects.filter(image_id__in=image_ids).values("image_id").annotate(first=Min("pk")).values("first")
    )
    imported = ImageSource.objects.filter(pk__in=first_rows, batch=batch).count()
    totals = ImportChunk.objects.filter(batch=batch).aggregate(
        files_ok=Sum("files_ok"), present=Sum("already_present"), done=Sum("progress_done")
    )
    files_ok, present = totals["files_ok"] or 0, totals["present"] or 0
    conflicts_disputed = _conflicts_to_adjudication(image_ids)
    refresh = duplicates_refresh()
    if batch.source.trusted and image_ids:
        images_imported.send(sender=ImportBatch, image_ids=sorted(image_ids))
    seconds = time.monotonic() - started
    rejected = list(batch.rejected_files.filter(kind=RejectedFile.Kind.REJECTED).values("path", "reason"))
    skipped = list(batch.rejected_files.filter(kind=RejectedFile.Kind.SKIPPED).values("path", "reason"))
    batch.refresh_from_db(fields=["report"])
    with transaction.atomic():
        ImportBatch.objects.filter(pk=batch.pk).update(
            imported=imported,
            already_present=present,
            duplicates_exact=max(0, files_ok - imported - present),
            rejected_count=len(rejected),
            seconds=seconds,
            upload="",
            progress_done=totals["done"] or 0,
            progress_detail={**batch.progress_detail, "conflicts_to_adjudication": conflicts_disputed},
        )
        execution.succeed()
    return ImportSummary(
        batch_id=batch.pk,
        imported=imported,
        already_present=present,
        duplicates_exact=max(0, files_ok - imported - present),
        rejected=rejected,
        skipped=skipped,
        report=batch.report,
        duplicate_groups=refresh.groups,
        seconds=seconds,
    )


def _conflicts_to_adjudication(image_ids: set[int]) -> int:
    """Flag images whose source labels disagree; pending ones go to the adjudication queue (audited)."""
    conflicting = list(
        ImageSource.objects.filter(image_id__in=image_ids, source_label__isnull=False)
        .values("image_id")
        .annotate(labels=Count("source_label", distinct=True))
        .filter(labels__gt=1)
        .values_list("image_id", flat=True)
    )
    Image.objects.filter(pk__in=conflicting, conflicting_source_labels=False).update(conflicting_source_labels=True)
    disputed = 0
    with transaction.atomic():
        for image in Image.objects.select_for_update().filter(pk__in=conflicting, status=Image.Status.PENDING):
            image_mark_disputed(image=image, actor=None, action="source_labels_conflict")
            disputed += 1
    return disputed
