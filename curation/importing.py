"""Planning an import from file names and first bytes: which files are images, which class each
has, which metadata row joins each, and what the mapping and metadata files say.

No model access here: the caller hands in the class names (`ClassIndex`), so the same plan is
made from a folder, from a zip's central directory, in a web request or in a worker, before
anything is written.
"""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.core.exceptions import ValidationError

from curation.taxonomy import normalize_folder_name

SKIP = "skip"
HEAD_BYTES = 32
LISTED_IN_MESSAGES = 20

# Raster formats by their first bytes (what the decoder accepts, see curation.imaging).
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WEBP"),
    (b"ftypavif", 4, "AVIF"),
    (b"ftypavis", 4, "AVIF"),
)
# Suffixes people give images: such a file goes to the decoder whatever its bytes, so that a broken
# photo is reported as rejected (with the decoder's reason) rather than skipped.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif"}
)

# Metadata columns, as clinics and public sets name them, → the names the app uses.
METADATA_ALIASES = {"localization": "body_site", "anatom_site_general": "body_site", "fitzpatrick_type": "fitzpatrick"}
JOIN_COLUMNS = ("image_id", "filename")
MODALITIES = ("clinical", "dermoscopic")
_MISSING = frozenset({"", "unknown", "na", "n/a", "nan", "none", "null", "-"})
_FITZPATRICK = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}


def image_format_of(head: bytes) -> str | None:
    """The raster format these first bytes start, or None."""
    for signature, offset, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def what_it_is(head: bytes, name: str) -> str:
    """A few words on a file that is not an image, for the list of skipped files."""
    if not head:
        return "an empty file"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (nested archives are not opened)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary content"
    if PurePosixPath(name).suffix.lower() in (".csv", ".tsv"):
        return "a CSV text file (a metadata file? pass it with --metadata)"
    return "a text file"


# --- What the folders and labels mean ------------------------------------------------------------


@dataclass(frozen=True)
class ClassIndex:
    """The label classes as the planner needs them: codes, indices and the folder aliases."""

    codes: tuple[str, ...]
    index_to_code: dict[int, str]
    aliases: dict[str, str]  # normalized folder name → code
    known_text: str  # "Known classes: 0 normal_skin (Normal skin), …."

    def code_for(self, value: str) -> str | None:
        """A class code, an index or `skip` as written in a mapping file; None when it names nothing."""
        value = value.strip()
        if value.casefold() == SKIP:
            return SKIP
        if value in self.codes:
            return value
        if value.isdigit() and int(value) in self.index_to_code:
            return self.index_to_code[int(value)]
        return None


def class_map_from_pairs(pairs: Iterable[str], classes: ClassIndex) -> dict[str, str]:
    """["FOLDER=code", ...] (code, index or skip) → {"FOLDER": code}; unknown codes are refused."""
    class_map = {}
    for pair in pairs:
        folder, separator, value = pair.partition("=")
        folder, value = folder.strip(), value.strip()
        if not separator or not folder or not value:
            raise ValidationError(f'--map needs the form "FOLDER=code", got {pair!r}.')
        code = classes.code_for(value)
        if code is None:
            raise ValidationError(f"--map {pair!r}: unknown class code {value!r}. {classes.known_text}")
        class_map[folder] = code
    return class_map


def class_map_from_file(data: bytes, classes: ClassIndex, *, name: str = "the mapping file") -> dict[str, str]:
    """A `folder,code` CSV → {folder: code}. Rows with an empty code are left unmapped; an unknown
    code, a missing column or the same folder given two codes stop with an error naming the line."""
    rows = _csv_rows(data, name=name)
    header, body = rows
    missing = {"folder", "code"} - set(header)
    if missing:
        raise ValidationError(f"{name} needs the columns folder,code; it has {', '.join(header) or 'none'}.")
    class_map: dict[str, str] = {}
    for line, row in body:
        folder, value = row.get("folder", "").strip(), row.get("code", "").strip()
        if not folder or not value:
            continue
        code = classes.code_for(value)
        if code is None:
            raise ValidationError(
                f"{name}, line {line}: unknown class code {value!r} for {folder!r}. {classes.known_text}"
            )
        if class_map.get(folder, code) != code:
            raise ValidationError(
                f"{name}, line {line}: {folder!r} is mapped twice, to {class_map[folder]} and {code}."
            )
        class_map[folder] = code
    return class_map


def _csv_rows(data: bytes, *, name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(f"{name} is not a UTF-8 CSV file ({error.reason} at byte {error.start}).") from error
    if "\x00" in text:
        raise ValidationError(f"{name} is not a CSV file (it holds binary data).")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [column.strip() for column in next(reader, [])]
        body = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise ValidationError(f"{name}, line {reader.line_num}: {len(row)} values for {len(header)} columns.")
            body.append((reader.line_num, dict(zip(header, (cell.strip() for cell in row), strict=False))))
    except csv.Error as error:
        raise ValidationError(f"{name} is not a readable CSV file (line {reader.line_num}: {error}).") from error
    if not header or not any(header):
        raise ValidationError(f"{name} is empty: it has no header row.")
    return header, body


# --- Metadata ------------------------------------------------------------------------------------


@dataclass
class Metadata:
    """A metadata file, parsed: one row per image key (the file stem), with clean values."""

    join_column: str
    columns: list[str]
    rows: dict[str, dict]

    @property
    def keys(self) -> set[str]:
        return set(self.rows)


def join_key(value: str) -> str:
    """The key a metadata row and a file share: the file name without folders and without an image
    suffix, case-folded ("ISIC_0024306.jpg", "images/ISIC_0024306.JPG" and "ISIC_0024306" all join)."""
    name = PurePosixPath(value.strip().replace("\\", "/")).name
    if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
        name = PurePosixPath(name).stem
    return name.casefold()


def metadata_parse(data: bytes, *, name: str = "the metadata file") -> Metadata:
    """Read a metadata CSV (HAM10000 / ISIC columns as they are, or the generic ones).

    A malformed file raises ValidationError: no `image_id` or `filename` column, unreadable CSV,
    an empty or duplicated join value, or a value that cannot be what its column says.
    """
    header, body = _csv_rows(data, name=name)
    join_column = next((column for column in JOIN_COLUMNS if column in header), None)
    if join_column is None:
        raise ValidationError(
            f"{name} has no image_id or filename column to join on; its columns are {', '.join(header)}."
        )
    rows: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    duplicates: list[str] = []
    for line, raw in body:
        key = join_key(raw.get(join_column, ""))
        if not key:
            raise ValidationError(f"{name}, line {line}: the {join_column} is empty.")
        if key in rows:
            duplicates.append(f"{raw[join_column]} (lines {first_line[key]} and {line})")
            continue
        first_line[key] = line
        rows[key] = _clean_row(raw, join_column=join_column, line=line, name=name)
    if duplicates:
        listed = "; ".join(duplicates[:LISTED_IN_MESSAGES])
        more = f" and {len(duplicates) - LISTED_IN_MESSAGES} more" if len(duplicates) > LISTED_IN_MESSAGES else ""
        raise ValidationError(
            f"{name} gives {len(duplicates)} {join_column} values more than once: {listed}{more}. Nothing was imported."
        )
    columns = [METADATA_ALIASES.get(column, column) for column in header]
    return Metadata(join_column=join_column, columns=columns, rows=rows)


def _clean_row(raw: dict[str, str], *, join_column: str, line: int, name: str) -> dict:
    row: dict = {}
    for column, value in raw.items():
        if not column:
            continue
        column = METADATA_ALIASES.get(column, column)
        value = (value or "").strip()
        if value.casefold() in _MISSING and column != join_column:
            continue
        if column == "age":
            try:
                age = float(value)
            except ValueError:
                raise ValidationError(f"{name}, line {line}: age {value!r} is not a number.") from None
            if not 0 <= age <= 130:
                raise ValidationError(f"{name}, line {line}: age {value!r} is out of range.")
            row[column] = int(age) if age.is_integer() else age
        elif column == "sex":
            row[column] = {"m": "male", "f": "female"}.get(value.casefold(), value.casefold())
        elif column == "fitzpatrick":
            number = _FITZPATRICK.get(value.casefold()) or (int(value) if value.isdigit() else None)
            if number not in range(1, 7):
                raise ValidationError(f"{name}, line {line}: fitzpatrick {value!r} is not a type I–VI (1–6).")
            row[column] = number
        elif column == "modality":
            if value.casefold() not in MODALITIES:
                raise ValidationError(f"{name}, line {line}: modality {value!r} is not clinical or dermoscopic.")
            row[column] = value.casefold()
        else:
            row[column] = value
    return row


# --- The files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """A file of the folder or zip: its path below the root (POSIX), and its first bytes."""

    path: str
    head: bytes


def is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(relative_path).parts)


def folder_entries(root: Path) -> Iterator[FileEntry]:
    """Regular files below `root` (links are not followed), in path order."""
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        head = b""
        if not is_hidden(relative):
            with path.open("rb") as handle:
                head = handle.read(HEAD_BYTES)
        yield FileEntry(path=relative, head=head)


def zip_check(archive: zipfile.ZipFile, *, zip_size: int, max_bytes: int, max_ratio: float) -> None:
    """Refuse a zip from its central directory: entries outside it, links, and bombs (the sizes of
    all members together against `max_bytes` and against `max_ratio` × the zip's own size)."""
    total = 0
    for member in archive.infolist():
        name = member.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise ValidationError(f"The zip is refused: the entry {member.filename!r} points outside the archive.")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise ValidationError(f"The zip is refused: the entry {member.filename!r} is a link.")
        total += member.file_size
    if total > max_bytes:
        raise ValidationError(
            f"The zip is refused: its {len(archive.infolist())} entries would unpack to {total / 1e9:.2f} GB, "
            f"more than the limit of {max_bytes / 1e9:.2f} GB (DERMCURATE_ZIP_MAX_BYTES; a zip bomb?)."
        )
    if zip_size and total > max_ratio * zip_size:
        raise ValidationError(
            f"The zip is refused: it would unpack to {total / max(zip_size, 1):.0f}× its own size "
            f"({total / 1e6:.1f} MB from {zip_size / 1e6:.1f} MB), more than {max_ratio:g}× "
            "(DERMCURATE_ZIP_MAX_RATIO; a zip bomb?)."
        )


def zip_entries(archive: zipfile.ZipFile) -> Iterator[FileEntry]:
    for member in sorted(archive.infolist(), key=lambda m: m.filename):
        if member.is_dir():
            continue
        head = b""
        if not is_hidden(member.filename):
            with archive.open(member) as handle:
                head = handle.read(HEAD_BYTES)
        yield FileEntry(path=member.filename, head=head)


# --- The plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFile:
    path: str  # below the root, POSIX
    label_code: str | None
    metadata_key: str | None


@dataclass
class FolderPlan:
    files: int = 0
    code: str | None = None  # a class code, SKIP, or None: unmapped
    examples: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    files: list[PlannedFile] = field(default_factory=list)
    folders: dict[str, FolderPlan] = field(default_factory=dict)
    label_values: dict[str, FolderPlan] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not images
    hidden: int = 0
    not_imported_by_mapping: int = 0
    metadata_rows: int = 0
    unmatched_rows: list[str] = field(default_factory=list)  # join values that match no image
    without_metadata: list[str] = field(default_factory=list)  # image paths with no row
    has_metadata: bool = False

    @property
    def unmapped(self) -> list[str]:
        names = [name for name, folder in self.folders.items() if folder.code is None]
        names += [f"{value} (label)" for value, plan in self.label_values.items() if plan.code is None]
        return sorted(names, key=str.casefold)

    def as_dict(self) -> dict:
        return {
            "files": len(self.files),
            "folders": [
                {"folder": name, "files": plan.files, "code": plan.code or "unmapped", "examples": plan.examples}
                for name, plan in sorted(self.folders.items(), key=lambda item: item[0].casefold())
            ],
            "label_values": [
                {"value": value, "files": plan.files, "code": plan.code or "unmapped"}
                for value, plan in sorted(self.label_values.items(), key=lambda item: item[0].casefold())
            ],
            "unmapped": self.unmapped,
            "not_imported_by_mapping": self.not_imported_by_mapping,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "hidden_files_ignored": self.hidden,
            "metadata": {
                "rows": self.metadata_rows,
                "matched_rows": self.metadata_rows - len(self.unmatched_rows),
                "unmatched_rows": self.unmatched_rows,
                "images_without_metadata": self.without_metadata,
            }
            if self.has_metadata
            else None,
        }


class UnmappedFolders(ValidationError):
    """The plan names folders (or label values) that match no class, and the policy is to refuse."""

    def __init__(self, message: str, *, unmapped: list[str]):
        super().__init__(message)
        self.unmapped = unmapped


def plan_import(
    entries: Iterable[FileEntry],
    *,
    root_name: str,
    classes: ClassIndex,
    class_map: dict[str, str],
    unmapped: str = "fail",
    metadata: Metadata | None = None,
    label_column: str = "",
    refuse: bool = True,
) -> ImportPlan:
    """Which files to import with which class and metadata key. With `refuse` and the `fail` policy,
    folders (or label values) that match no class raise UnmappedFolders, listing every one of them."""
    if label_column and metadata is None:
        raise ValidationError("--label-column needs a metadata file (--metadata FILE.csv).")
    if label_column and label_column not in metadata.columns:
        raise ValidationError(
            f"The metadata file has no column {label_column!r}; its columns are {', '.join(metadata.columns)}."
        )
    mapped = {name.casefold(): code for name, code in class_map.items()}

    def class_of(name: str) -> str | None:
        return mapped.get(name.casefold()) or classes.aliases.get(normalize_folder_name(name))

    root_code = class_of(root_name)
    plan = ImportPlan(has_metadata=metadata is not None, metadata_rows=len(metadata.rows) if metadata else 0)
    matched_keys: set[str] = set()
    pending: list[tuple[str, str | None, str | None, str | None]] = []  # path, code, folder, label value
    for entry in entries:
        if is_hidden(entry.path):
            plan.hidden += 1
            continue
        if image_format_of(entry.head) is None and PurePosixPath(entry.path).suffix.lower() not in IMAGE_SUFFIXES:
            plan.skipped.append((entry.path, f"not an image: {what_it_is(entry.head, entry.path)}"))
            continue
        parts = PurePosixPath(entry.path).parts
        folders = parts[:-1]
        key = join_key(parts[-1])
        row = metadata.rows.get(key) if metadata else None
        if row is not None:
            matched_keys.add(key)
        elif metadata is not None:
            plan.without_metadata.append(entry.path)
        value = str(row.get(label_column, "")) if (row is not None and label_column) else ""
        if value:
            pending.append((entry.path, class_of(value), None, value))
            continue
        folder_code, folder_name = None, None
        for name in reversed(folders):
            folder_code = class_of(name)
            if folder_code:
                folder_name = name
                break
        if folder_code is None and folders:
            folder_name = folders[-1]
        if folder_code is None and root_code:
            folder_code, folder_name = root_code, folder_name or root_name
        pending.append((entry.path, folder_code, folder_name, None))

    for path, code, folder_name, value in pending:
        if value is not None:
            target = plan.label_values.setdefault(value, FolderPlan(code=code))
        elif folder_name is not None:
            target = plan.folders.setdefault(folder_name, FolderPlan(code=code))
        else:
            target = None
        if target is not None:
            target.files += 1
            if len(target.examples) < 3:
                target.examples.append(path)
        if code == SKIP or (code is None and target is not None):
            plan.not_imported_by_mapping += 1
            continue
        key = join_key(PurePosixPath(path).name)
        plan.files.append(PlannedFile(path=path, label_code=code, metadata_key=key if key in matched_keys else None))
    if metadata is not None:
        plan.unmatched_rows = sorted(key for key in metadata.rows if key not in matched_keys)
    names = plan.unmapped
    if names and unmapped == "skip":
        return plan
    if names and refuse:
        listed = "; ".join(names[:LISTED_IN_MESSAGES])
        more = (
            f" … and {len(names) - LISTED_IN_MESSAGES} more (--json lists them all)"
            if len(names) > LISTED_IN_MESSAGES
            else ""
        )
        raise UnmappedFolders(
            f"{len(names)} folder{'s' if len(names) != 1 else ''} match no class: {listed}{more}. "
            "Write a mapping template with --write-map-template FILE.csv, fill in its code column (a class code, "
            'an index or skip) and pass it with --map-file FILE.csv (or --map "FOLDER=code"), or leave them out '
            f"with --unmapped skip. {classes.known_text} Nothing was imported.",
            unmapped=names,
        )
    return plan


def map_template_rows(plan: ImportPlan) -> list[tuple[str, str]]:
    """`folder,code` rows for every folder (and label value) found: known ones filled in, unknown empty."""
    rows = [(name, folder.code or "") for name, folder in plan.folders.items()]
    rows += [(value, folder.code or "") for value, folder in plan.label_values.items()]
    return sorted(rows, key=lambda row: row[0].casefold())


def map_template_text(plan: ImportPlan) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["folder", "code"])
    writer.writerows(map_template_rows(plan))
    return buffer.getvalue()
