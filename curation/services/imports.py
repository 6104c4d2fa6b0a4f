"""Import image folders (the Kaggle layout, at any depth) and zips.

Each file is read, hashed, decoded and sanitized in a process pool; the main
process stores files by content and writes rows in bulk. Files are written
before their rows, and the rows of each chunk commit together: a rejected
file, or one cut off by a killed process, leaves no row, and the leftovers of
a killed import are swept by the next one.
"""

import logging
import stat
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from core.services.jobs import JobExecution, job_claim, job_enqueue, job_running
from curation.models import Image, ImageSource, ImportBatch, LabelClass, RejectedFile, Source
from curation.selectors.classes import folder_name_index, label_classes_by_code
from curation.services import storage
from curation.signals import images_imported
from curation.taxonomy import normalize_folder_name

if TYPE_CHECKING:
    from curation.imaging import AlreadyPresent, ImageRejected, ProcessedImage

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    relative_path: str
    label_code: str | None


@dataclass
class ImportSummary:
    batch_id: int
    imported: int = 0
    already_present: int = 0
    duplicates_exact: int = 0
    rejected: list[dict] = field(default_factory=list)
    skipped_not_images: int = 0
    duplicate_groups: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "batch": self.batch_id,
            "imported": self.imported,
            "already_present": self.already_present,
            "duplicates_exact": self.duplicates_exact,
            "rejected": self.rejected,
            "skipped_not_images": self.skipped_not_images,
            "duplicate_groups": self.duplicate_groups,
            "seconds": round(self.seconds, 3),
        }


# --- Planning: which files, which classes --------------------------------------------------------


def parse_class_map(pairs: Iterable[str]) -> dict[str, str]:
    """["FOLDER=code", ...] → {"FOLDER": "code"}; unknown codes are refused."""
    known = label_classes_by_code()
    class_map = {}
    for pair in pairs:
        folder, separator, code = pair.partition("=")
        folder, code = folder.strip(), code.strip()
        if not separator or not folder or not code:
            raise ValidationError(f'--map needs the form "FOLDER=code", got {pair!r}.')
        if code not in known:
            raise ValidationError(f"--map {pair!r}: unknown class code {code!r}. {_known_classes_text()}")
        class_map[folder] = code
    return class_map


def _known_classes_text() -> str:
    classes = ", ".join(f"{label.index} {label.code} ({label.name})" for label in LabelClass.objects.order_by("index"))
    return f"Known classes: {classes}."


def import_plan(root: Path, *, class_map: dict[str, str]) -> tuple[list[PlannedFile], int]:
    """The image files under `root` with the class of the nearest class folder above each.

    A folder that holds images and matches no class stops the import before
    anything is written (raises ValidationError naming it). Returns the files
    and the number of files skipped because they are not images.
    """
    from curation.imaging import is_image_path  # Pillow and imagehash: only where images are handled

    aliases = folder_name_index()
    mapped = {name.casefold(): code for name, code in class_map.items()}

    def class_of(folder_name: str) -> str | None:
        return mapped.get(folder_name.casefold()) or aliases.get(normalize_folder_name(folder_name))

    root_class = class_of(root.name)
    planned, unknown_folders, skipped = [], set(), 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") or part == "__MACOSX" for part in relative.parts):
            continue
        if path.is_symlink() or not path.is_file():
            continue
        if not is_image_path(path):
            skipped += 1
            continue
        folders = relative.parts[:-1]
        label = next((code for code in map(class_of, reversed(folders)) if code), None) or root_class
        if label is None and folders:
            unknown_folders.add("/".join(folders))
        planned.append(PlannedFile(path=path, relative_path=relative.as_posix(), label_code=label))
    if unknown_folders:
        listed = "; ".join(sorted(unknown_folders)[:20])
        raise ValidationError(
            f"These folders match no class: {listed}. Rename them, or map them with "
            f'--map "FOLDER=code". {_known_classes_text()} Nothing was imported.'
        )
    return planned, skipped


# --- Zips ----------------------------------------------------------------------------------------


def zip_extract_safely(zip_path: Path, destination: Path) -> None:
    """Extract a zip after refusing traversal, absolute paths, links and zip bombs."""
    max_bytes = settings.DERMCURATE_ZIP_MAX_BYTES
    max_ratio = settings.DERMCURATE_ZIP_MAX_RATIO
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValidationError(f"{zip_path.name} is not a readable zip file ({error}).") from error
    with archive:
        members = archive.infolist()
        total = 0
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
                raise ValidationError(f"The zip is refused: the entry {member.filename!r} points outside the archive.")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ValidationError(f"The zip is refused: the entry {member.filename!r} is a link.")
            total += member.file_size
            if total > max_bytes:
                raise ValidationError(
                    f"The zip is refused: it would unpack to more than {max_bytes / 1e9:.1f} GB (a zip bomb?)."
                )
            if member.compress_size and member.file_size / member.compress_size > max_ratio and member.file_size > 1e6:
                raise ValidationError(
                    f"The zip is refused: {member.filename!r} expands {member.file_size / member.compress_size:.0f}× "
                    f"(more than {max_ratio}×; a zip bomb?)."
                )
        written = 0
        for member in members:
            target = destination / PurePosixPath(member.filename.replace("\\", "/"))
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("wb") as sink:
                # The header's sizes can lie; count what is really written.
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ValidationError(
                            "The zip is refused: it unpacks to more than its headers say (a zip bomb?)."
                        )
                    sink.write(chunk)


# --- Running a batch -----------------------------------------------------------------------------


@transaction.atomic
def import_batch_create(
    *,
    source_name: str,
    trusted: bool = False,
    path: str = "",
    upload=None,
    class_map: dict[str, str] | None = None,
    created_by=None,
) -> ImportBatch:
    source_name = source_name.strip()
    if not source_name:
        raise ValidationError("A source name is needed (e.g. kaggle-skin-diseases, clinic-2026).")
    longest = Source._meta.get_field("name").max_length
    if len(source_name) > longest:
        raise ValidationError(
            f"The source name has {len(source_name)} characters; at most {longest} are allowed.", code="max_length"
        )
    source, _ = Source.objects.get_or_create(name=source_name)
    if trusted and not source.trusted:
        # --trusted marks the source trusted; leaving it out never demotes a source.
        source.trusted = True
        source.save(update_fields=["trusted"])
    batch = ImportBatch(source=source, path=path, class_map=class_map or {}, created_by=created_by)
    if upload is not None:
        batch.upload = upload
    batch.save()
    return batch


def import_batch_request(
    *, upload, source_name: str, trusted: bool, created_by, class_map: dict[str, str] | None = None
) -> ImportBatch:
    """Queue an uploaded zip for import by a worker (its task is sent once this transaction commits)."""
    if not zipfile.is_zipfile(upload):
        raise ValidationError(f"{upload.name} is not a zip file.")
    upload.seek(0)
    with transaction.atomic():
        batch = import_batch_create(
            source_name=source_name,
            trusted=trusted,
            path=upload.name,
            upload=upload,
            class_map=class_map,
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


def storage_sweep_orphans() -> int:
    """Delete content files that have no image row (left by a killed import).

    Files are written before their rows, so this never runs while an import is
    running; it is left pending instead, and the next import to start runs it.
    Listing all of storage is slow on S3, so it runs only after an interrupted import.
    """
    if ImportBatch.objects.running().exists():
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
    """What the beat task runs after failing a batch whose worker stopped: sweep its files now, or
    leave the sweep pending for the next import when another import is running."""
    ImportBatch.objects.filter(pk=batch.pk).update(progress_detail={**batch.progress_detail, "sweep_pending": True})
    storage_sweep_orphans()


def _sweep_if_pending() -> None:
    if ImportBatch.objects.filter(status=ImportBatch.Status.FAILED, progress_detail__sweep_pending=True).exists():
        storage_sweep_orphans()


def import_images(
    *,
    path: Path,
    source_name: str,
    trusted: bool = False,
    class_map: dict[str, str] | None = None,
    created_by=None,
    progress: ProgressCallback | None = None,
    workers: int = 0,
) -> ImportSummary:
    """Import a folder or zip at `path` in this process (what the command runs)."""
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"{path} does not exist.")
    batch = import_batch_create(
        source_name=source_name, trusted=trusted, path=str(path), class_map=class_map, created_by=created_by
    )
    # This process runs it: the beat task must not send it to a worker as well.
    ImportBatch.objects.filter(pk=batch.pk).update(dispatched_at=timezone.now())
    return import_batch_execute(batch_id=batch.pk, progress=progress, workers=workers)


def import_batch_execute(
    *, batch_id: int, progress: ProgressCallback | None = None, workers: int = 0
) -> ImportSummary | None:
    """Claim a queued batch and run it to the end; None when it is not queued (a redelivered task)."""
    batch = job_claim(model=ImportBatch, job_id=batch_id)
    if batch is None:
        return None
    return import_batch_run(batch=batch, progress=progress, workers=workers)


def import_batch_run(
    *, batch: ImportBatch, progress: ProgressCallback | None = None, workers: int = 0
) -> ImportSummary:
    """Run a claimed batch; the batch row records the outcome either way (errors are raised again)."""
    started = time.monotonic()
    writer = _BatchWriter(batch)
    try:
        with job_running(batch) as execution:
            writer.execution = execution
            root = _import_root(batch, execution.scratch)
            _import_folder(batch=batch, root=root, writer=writer, progress=progress, workers=workers)
            writer.summary.seconds = time.monotonic() - started
            with transaction.atomic():
                ImportBatch.objects.filter(pk=batch.pk).update(seconds=writer.summary.seconds, upload="")
                execution.succeed()
            if batch.upload:
                # Every image is now stored on its own; the uploaded zip is no longer needed.
                batch.upload.delete(save=False)
    finally:
        writer.summary.seconds = time.monotonic() - started
        ImportBatch.objects.filter(pk=batch.pk, seconds__isnull=True).update(seconds=writer.summary.seconds)
    return writer.summary


def _import_root(batch: ImportBatch, scratch: Path) -> Path:
    if batch.upload:
        try:
            # Read in place on a local disk; a bucket's copy is downloaded into the scratch folder.
            zip_source = storage.stored_file_local(name=batch.upload.name, download_to=scratch / "upload.zip")
        except FileNotFoundError as error:
            raise ValidationError(f"The uploaded zip of import #{batch.pk} is gone from storage.") from error
    else:
        path = Path(batch.path)
        if not path.exists():
            raise ValidationError(f"{path} does not exist.")
        if path.is_dir():
            return path
        zip_source = path
    if not zipfile.is_zipfile(zip_source):
        raise ValidationError(f"{Path(batch.path or batch.upload.name).name} is neither a folder nor a zip file.")
    root = scratch / Path(batch.path or batch.upload.name).stem
    root.mkdir()
    zip_extract_safely(zip_source, root)
    return root


def _import_folder(
    *, batch: ImportBatch, root: Path, writer: "_BatchWriter", progress: ProgressCallback | None, workers: int
) -> ImportSummary:
    from curation import import_pool

    planned, skipped = import_plan(root, class_map=batch.class_map)
    _sweep_if_pending()
    writer.execution.progress(done=0, total=len(planned))
    writer.summary.skipped_not_images = skipped
    known = frozenset(Image.objects.values_list("sha256", flat=True))
    options = {
        "max_pixels": settings.DERMCURATE_MAX_IMAGE_PIXELS,
        "sanitized_max_side": settings.DERMCURATE_SANITIZED_MAX_SIDE,
        "thumbnail_max_side": settings.DERMCURATE_THUMBNAIL_MAX_SIDE,
    }
    worker_total = import_pool.worker_count(workers or settings.DERMCURATE_IMPORT_WORKERS)
    if progress:
        progress(0, len(planned))
    if planned:
        with import_pool.make_executor(workers=worker_total, known_sha256=known, options=options) as executor:
            results = executor.map(import_pool.process_path, [str(f.path) for f in planned], chunksize=4)
            for done, (planned_file, result) in enumerate(zip(planned, results, strict=True), start=1):
                writer.add(planned_file, result)
                if progress:
                    progress(done, len(planned))
    writer.flush()
    summary = writer.summary
    from curation.services.duplicates import duplicates_refresh

    summary.duplicate_groups = duplicates_refresh().groups
    if batch.source.trusted and writer.touched_image_ids:
        images_imported.send(sender=ImportBatch, image_ids=sorted(writer.touched_image_ids))
    return summary


class _BatchWriter:
    """Collects results and writes them in chunks: files first, then rows in one transaction."""

    def __init__(self, batch: ImportBatch):
        self.batch = batch
        self.execution: JobExecution | None = None
        self.labels = {label.code: label for label in LabelClass.objects.all()}
        self.summary = ImportSummary(batch_id=batch.pk)
        # A retried batch counts what its earlier attempts imported as imported, not as already present.
        self.imported_earlier = _first_imported_by(batch) if batch.attempts > 1 else frozenset()
        self.summary.imported = len(self.imported_earlier)
        if batch.attempts > 1:
            RejectedFile.objects.filter(batch=batch).delete()
        self.seen_in_batch: set[str] = set()
        self.new_images: list[Image] = []
        self.written_files: list[str] = []
        self.provenance: list[tuple[str, PlannedFile]] = []
        self.rejected: list[RejectedFile] = []
        self.touched_image_ids: set[int] = set()
        self.processed = 0

    def add(self, planned: PlannedFile, result: "ProcessedImage | AlreadyPresent | ImageRejected") -> None:
        from curation.imaging import AlreadyPresent, ImageRejected

        self.processed += 1
        if isinstance(result, ImageRejected):
            self.rejected.append(RejectedFile(batch=self.batch, path=planned.relative_path, reason=result.reason))
            self.summary.rejected.append({"path": planned.relative_path, "reason": result.reason})
        elif isinstance(result, AlreadyPresent):
            if result.sha256 not in self.imported_earlier:
                self.summary.already_present += 1
            self.provenance.append((result.sha256, planned))
        elif result.sha256 in self.seen_in_batch:
            self.summary.duplicates_exact += 1
            self.provenance.append((result.sha256, planned))
        else:
            self.seen_in_batch.add(result.sha256)
            self.new_images.append(self._store(result, planned))
            self.provenance.append((result.sha256, planned))
        if len(self.provenance) + len(self.rejected) >= settings.DERMCURATE_IMPORT_CHUNK_SIZE:
            self.flush()

    def _store(self, result: "ProcessedImage", planned: PlannedFile) -> Image:
        names = {
            "original": storage.original_name(result.sha256, result.original_extension),
            "sanitized": storage.sanitized_name(result.sha256),
            "thumbnail": storage.thumbnail_name(result.sha256),
        }
        payloads = {
            "original": result.original_bytes,
            "sanitized": result.sanitized_jpeg,
            "thumbnail": result.thumbnail_jpeg,
        }
        for kind, name in names.items():
            self.written_files.append(name)
            storage.content_file_write(name=name, data=payloads[kind])
        return Image(
            sha256=result.sha256,
            original=names["original"],
            sanitized=names["sanitized"],
            thumbnail=names["thumbnail"],
            original_format=result.original_format,
            file_size=len(result.original_bytes),
            width=result.width,
            height=result.height,
            sanitized_width=result.sanitized_width,
            sanitized_height=result.sanitized_height,
            phash=result.phash,
            dhash=result.dhash,
            source_label=self.labels.get(planned.label_code),
        )

    def flush(self) -> None:
        try:
            with transaction.atomic():
                self._write_rows()
        except BaseException:
            # The rows did not commit: their files must not stay behind.
            stored = set(
                Image.objects.filter(sha256__in=[i.sha256 for i in self.new_images]).values_list("sha256", flat=True)
            )
            storage.content_files_delete(
                [n for n in self.written_files if n.rsplit("/", 1)[-1].split(".")[0] not in stored]
            )
            raise
        self.summary.imported += len(self.new_images)
        self.new_images, self.written_files, self.provenance, self.rejected = [], [], [], []
        if self.execution is not None:
            self.execution.check_cancelled()

    def _write_rows(self) -> None:
        # ignore_conflicts: a concurrent import of the same bytes may have won the race.
        Image.objects.bulk_create(self.new_images, ignore_conflicts=True)
        shas = {sha256 for sha256, _ in self.provenance}
        image_ids = dict(Image.objects.filter(sha256__in=shas).values_list("sha256", "id"))
        ImageSource.objects.bulk_create(
            [
                ImageSource(
                    image_id=image_ids[sha256],
                    batch=self.batch,
                    source_id=self.batch.source_id,
                    source_label=self.labels.get(planned.label_code),
                    source_path=planned.relative_path,
                )
                for sha256, planned in self.provenance
            ],
            ignore_conflicts=True,
        )
        RejectedFile.objects.bulk_create(self.rejected)
        touched = set(image_ids.values())
        self.touched_image_ids |= touched
        conflicting = (
            ImageSource.objects.filter(image_id__in=touched, source_label__isnull=False)
            .values("image_id")
            .annotate(labels=Count("source_label", distinct=True))
            .filter(labels__gt=1)
            .values_list("image_id", flat=True)
        )
        Image.objects.filter(pk__in=list(conflicting), conflicting_source_labels=False).update(
            conflicting_source_labels=True
        )
        ImportBatch.objects.filter(pk=self.batch.pk).update(
            progress_done=self.processed,
            heartbeat_at=timezone.now(),
            imported=self.summary.imported + len(self.new_images),
            already_present=self.summary.already_present,
            duplicates_exact=self.summary.duplicates_exact,
            rejected_count=len(self.summary.rejected),
        )


def _first_imported_by(batch: ImportBatch) -> frozenset[str]:
    """sha256 of the images whose first provenance row is this batch's (an earlier attempt imported them)."""
    first_rows = (
        ImageSource.objects.filter(image__provenance__batch=batch)
        .values("image_id")
        .annotate(first=Min("pk"))
        .values_list("first", flat=True)
    )
    return frozenset(
        ImageSource.objects.filter(pk__in=list(first_rows), batch=batch).values_list("image__sha256", flat=True)
    )
