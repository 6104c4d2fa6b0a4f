import random
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import Job


class FrozenError(Exception):
    """A write to a frozen snapshot was attempted."""


class LabelClass(models.Model):
    """One of the label classes. Model outputs follow `index`, never folder order."""

    index = models.PositiveSmallIntegerField(unique=True)
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    # Folder names of the public dataset that mean this class, e.g. "1. Eczema 1677".
    aliases = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["index"]
        verbose_name_plural = "label classes"

    def __str__(self) -> str:
        return f"{self.index}. {self.name}"


class Source(models.Model):
    """Where images came from (a dataset, a clinic). A trusted source's folder
    label counts as one agreeing reader."""

    name = models.CharField(max_length=100, unique=True)
    trusted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def import_upload_name(instance, filename: str) -> str:
    """A random prefix: two curators may upload the same file name at once, and object storage
    (S3) replaces a name that already exists."""
    return f"uploads/{secrets.token_hex(8)}-{filename}"


class UnmappedPolicy(models.TextChoices):
    FAIL = "fail", "Refuse the import"
    SKIP = "skip", "Skip their files"


class ImportBatch(Job):
    """A folder or zip to import: a job (see core.models.Job) run by the default queue's workers.

    Its files are split into ImportChunk jobs that any worker may take; the batch's own task takes
    chunks too and stays running until every chunk is done, so the batch is one job to its curator.
    """

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="batches")
    path = models.CharField(max_length=1000, blank=True, help_text="folder or zip imported")
    upload = models.FileField(upload_to=import_upload_name, max_length=255, blank=True)
    class_map = models.JSONField(
        default=dict, blank=True, help_text="folder name (or label value) → class code, or 'skip'"
    )
    unmapped = models.CharField(max_length=8, choices=UnmappedPolicy.choices, default=UnmappedPolicy.FAIL)
    metadata_file = models.FileField(upload_to=import_upload_name, max_length=255, blank=True, help_text="metadata CSV")
    label_column = models.CharField(max_length=100, blank=True, help_text="metadata column with the source label")
    report = models.JSONField(default=dict, blank=True, help_text="the plan: folders, skipped files, metadata joins")
    imported = models.PositiveIntegerField(default=0)
    already_present = models.PositiveIntegerField(default=0)
    duplicates_exact = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)

    job_kind = "import"
    job_task = "curation.tasks.import_batch_run_task"
    job_queue = "default"

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.source})"

    def job_cleanup(self) -> None:
        # Files are written before their rows: a killed import leaves files without rows.
        from curation.services.imports import import_batch_stopped

        import_batch_stopped(batch=self)

    def job_prepare_retry(self) -> None:
        from curation.services.imports import import_batch_check_retry

        import_batch_check_retry(batch=self)


class ImportChunk(Job):
    """Some files of an import batch, imported by whichever worker claims it; running it twice is harmless."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    entries = models.JSONField(default=list, help_text="[relative path, class code or null, metadata key or null]")
    files_ok = models.PositiveIntegerField(default=0, help_text="files stored or found present")
    rejected_count = models.PositiveIntegerField(default=0)
    already_present = models.PositiveIntegerField(default=0, help_text="files whose image another batch imported")

    job_kind = "import_chunk"
    job_task = "curation.tasks.import_chunk_run_task"
    job_queue = "default"

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="import_chunk_unique_index")]

    def __str__(self) -> str:
        return f"Import #{self.batch_id}, chunk {self.index}"

    def job_cleanup(self) -> None:
        from curation.services.imports import import_batch_stopped

        import_batch_stopped(batch=self.batch)


class RejectedFile(models.Model):
    """A file an import did not take: rejected (an image it cannot use) or skipped (not an image)."""

    class Kind(models.TextChoices):
        REJECTED = "rejected"
        SKIPPED = "skipped"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="rejected_files")
    path = models.CharField(max_length=1000)
    reason = models.CharField(max_length=500)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REJECTED)

    class Meta:
        ordering = ["batch", "path"]

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class DuplicateGroup(models.Model):
    """Images each of which is a verified near copy of every other (complete linkage over
    DuplicatePair rows; see curation.dedup). Byte-identical files are already one Image."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Duplicate group #{self.pk}"


class ExclusionReason(models.TextChoices):
    NOT_SKIN = "not_skin", "Not skin surface"
    BLURRY = "blurry", "Blurry / out of focus"
    LIGHTING = "lighting", "Bad lighting or exposure"
    MULTIPLE_CONDITIONS = "multiple_conditions", "Several conditions in one image"
    TEXT_OR_DIAGRAM = "text_or_diagram", "Text, diagram or drawing"
    OTHER = "other", "Other (see comment)"
    DUPLICATE = "duplicate", "Duplicate of a kept image"


# Reasons a reader may give for "cannot be judged" (a duplicate is a curator's call).
CANNOT_JUDGE_REASONS = tuple(r for r in ExclusionReason if r != ExclusionReason.DUPLICATE)


class ImageQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=Image.Status.PENDING)

    def labeled(self):
        return self.filter(status=Image.Status.LABELED)

    def disputed(self):
        return self.filter(status=Image.Status.DISPUTED)

    def excluded(self):
        return self.filter(status=Image.Status.EXCLUDED)

    def with_conflicts(self):
        return self.filter(conflicting_source_labels=True)


def _random_key() -> float:
    return random.random()


class Image(models.Model):
    """One photo, identified by the sha256 of its original bytes.

    The original is kept untouched; the app only ever serves the sanitized
    derivative and the thumbnail (upright, RGB, no EXIF/GPS).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        LABELED = "labeled"
        DISPUTED = "disputed"
        EXCLUDED = "excluded"

    sha256 = models.CharField(max_length=64, unique=True)
    original = models.FileField(max_length=255)
    sanitized = models.FileField(max_length=255)
    thumbnail = models.FileField(max_length=255)
    original_format = models.CharField(max_length=16)
    file_size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(help_text="upright original width")
    height = models.PositiveIntegerField(help_text="upright original height")
    sanitized_width = models.PositiveIntegerField()
    sanitized_height = models.PositiveIntegerField()
    # imagehash 64-bit hashes of the sanitized image, stored as signed integers.
    phash = models.BigIntegerField()
    dhash = models.BigIntegerField()
    # 64 × 64 grayscale of the served copy (curation.imaging.image_fingerprint): near-duplicate verification.
    fingerprint = models.BinaryField(default=b"", blank=True)
    # Whether its near-duplicate candidates were verified (an import adds only its new images' pairs).
    dedup_checked = models.BooleanField(default=False)
    # Clinical context and the source file's columns (age, sex, body_site, fitzpatrick, modality,
    # lesion_id, patient_id, …), from an import's metadata file.
    metadata = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="images")
    exclusion_reason = models.CharField(max_length=32, choices=ExclusionReason.choices, blank=True)
    exclusion_comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    source_label = models.ForeignKey(
        LabelClass,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="class of the folder it was first imported from",
    )
    conflicting_source_labels = models.BooleanField(default=False)
    duplicate_group = models.ForeignKey(
        DuplicateGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    # A stable random key: the review queue's default order and fair sampling.
    random_key = models.FloatField(default=_random_key)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["status", "random_key"], name="image_queue_idx"),
            models.Index(fields=["status", "label"], name="image_status_label_idx"),
            # The review queue counts what is left among pending images only.
            models.Index(fields=["id"], condition=Q(status="pending"), name="image_pending_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="labeled", label__isnull=False) | (~Q(status="labeled") & Q(label__isnull=True)),
                name="image_label_iff_labeled",
            ),
            models.CheckConstraint(
                condition=(Q(status="excluded") & ~Q(exclusion_reason=""))
                | (~Q(status="excluded") & Q(exclusion_reason="")),
                name="image_reason_iff_excluded",
            ),
        ]

    def __str__(self) -> str:
        return f"Image #{self.pk} ({self.sha256[:12]})"


class ImageSource(models.Model):
    """Provenance: where (and under which folder label) an image was found."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="provenance")
    batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="provenance")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="provenance")
    source_label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source_path = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["image", "source", "source_path"], name="provenance_unique_path"),
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.source_path}"


class DuplicatePair(models.Model):
    """Two images verified as near copies, with the similarity of their fingerprints."""

    image_low = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    image_high = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image_low", "image_high"], name="duplicate_pair_unique"),
            models.CheckConstraint(condition=Q(image_low__lt=models.F("image_high")), name="duplicate_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"Images {self.image_low_id} and {self.image_high_id}: {self.similarity:.2f}"


class NotDuplicateDecision(models.Model):
    """A curator's verdict that two images are not duplicates; kept across re-runs."""

    image_low = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    image_high = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image_low", "image_high"], name="not_duplicate_unique_pair"),
            models.CheckConstraint(condition=Q(image_low__lt=models.F("image_high")), name="not_duplicate_ordered"),
        ]

    def __str__(self) -> str:
        return f"Images {self.image_low_id} and {self.image_high_id} are not duplicates"


class Split(models.TextChoices):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Snapshot(models.Model):
    """An immutable, frozen copy of the curated state with its splits.

    Rows are written once (items, stats and hash computed before insert) and
    never changed: refused in the service, in `save`/`delete`, and by a
    database trigger (see migrations).
    """

    name = models.CharField(max_length=200, unique=True)
    seed = models.IntegerField()
    ratios = models.JSONField(help_text="train, val, test")
    classes = models.JSONField(default=list, blank=True, help_text="class codes included; empty = all")
    cap_per_class = models.PositiveIntegerField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    stats = models.JSONField(default=dict)
    item_count = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise FrozenError(f"Snapshot {self.name!r} is frozen and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise FrozenError(f"Snapshot {self.name!r} is frozen and cannot be deleted.")


class FrozenQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise FrozenError("Snapshot items are frozen and cannot be changed.")

    def delete(self):
        raise FrozenError("Snapshot items are frozen and cannot be deleted.")


class SnapshotItem(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="snapshot_items")
    label = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=8, choices=Split.choices)

    objects = FrozenQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "image"], name="snapshot_item_unique_image")]
        indexes = [models.Index(fields=["image", "snapshot"], name="snapshot_item_image_idx")]

    def __str__(self) -> str:
        return f"{self.snapshot_id}/{self.image_id} {self.split}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise FrozenError("Snapshot items are frozen and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise FrozenError("Snapshot items are frozen and cannot be deleted.")
