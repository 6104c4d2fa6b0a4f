"""A snapshot's exports, built as they are sent: CSV or JSON lines, and a zip that Keras reads.

Each function yields pieces in constant memory; the API view only streams them.
"""

import csv
import io
import json
import zipfile
from collections.abc import Iterator

from curation.models import LabelClass, Snapshot
from curation.selectors.snapshots import EXPORT_COLUMNS, snapshot_export_rows, snapshot_items
from curation.services.storage import stored_files_read

EXPORT_SPLITS = ("train", "val", "test", "all")
EXPORT_FORMATS = ("csv", "jsonl")
EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
ARCHIVE_SPLITS = ("train", "val", "test")
# Rows per piece sent: one socket write per row would cost more than the rows themselves.
ROWS_PER_CHUNK = 1000


class _Echo:
    """A write-only file whose writes are handed back, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def export_csv_lines(rows: Iterator[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        yield writer.writerow([row[column] for column in EXPORT_COLUMNS])


def export_jsonl_lines(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, separators=(",", ":")) + "\n"


def _chunks(lines: Iterator[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= ROWS_PER_CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def snapshot_export_chunks(
    snapshot: Snapshot, *, split: str | None, file_format: str, image_url_prefix: str
) -> Iterator[str]:
    """The snapshot's items (one split, or all with None) as CSV or JSON lines, ROWS_PER_CHUNK rows a piece."""
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {file_format!r}")
    rows = snapshot_export_rows(snapshot, split=split, image_url_prefix=image_url_prefix)
    lines = export_csv_lines(rows) if file_format == "csv" else export_jsonl_lines(rows)
    return _chunks(lines)


class _ZipStream(io.RawIOBase):
    """A non-seekable sink for zipfile: what is written is collected and handed out in pieces."""

    def __init__(self):
        self._pieces: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pieces.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def class_folder(index: int, name: str) -> str:
    # Two digits, so that sorting the folders by name (as Keras does) gives index order.
    return f"{index:02d}. {name.replace('/', '-')}"


def snapshot_archive_chunks(snapshot: Snapshot) -> Iterator[bytes]:
    """A zip of the sanitized images as <split>/<NN. class name>/<sha256>.jpg, with manifest.csv and
    stats.json, in pieces of about one image each; the images are read from storage as they are packed."""
    sink = _ZipStream()
    folders = {label.pk: class_folder(label.index, label.name) for label in LabelClass.objects.all()}
    present = sorted(set(snapshot_items(snapshot).values_list("label_id", flat=True)), key=folders.__getitem__)
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["path", "image_id", "sha256", "label_code", "label_index", "split"])
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        # Every class folder in every split, empty or not: Keras then maps labels the same way in each split.
        for split in ARCHIVE_SPLITS:
            for label_id in present:
                archive.writestr(zipfile.ZipInfo(f"{split}/{folders[label_id]}/"), b"")
        yield sink.take()
        items = snapshot_items(snapshot).values_list(
            "image_id", "image__sha256", "image__sanitized", "label_id", "label__code", "label__index", "split"
        )
        contents = stored_files_read((item, item[2]) for item in items.iterator(chunk_size=500))
        for (image_id, sha256, _, label_id, code, index, split), data in contents:
            path = f"{split}/{folders[label_id]}/{sha256}.jpg"
            with archive.open(path, "w") as target:
                target.write(data)
            writer.writerow([path, image_id, sha256, code, index, split])
            yield sink.take()
        archive.writestr("manifest.csv", manifest.getvalue())
        archive.writestr(
            "stats.json",
            json.dumps(
                {
                    "snapshot": snapshot.pk,
                    "name": snapshot.name,
                    "content_hash": snapshot.content_hash,
                    "seed": snapshot.seed,
                    "ratios": snapshot.ratios,
                    "stats": snapshot.stats,
                    "class_folders": [folders[pk] for pk in present],
                },
                indent=2,
            ),
        )
    yield sink.take()
