"""Freeze the curated state into an immutable snapshot with leakage-free, stable splits.

Split assignment, in this order of priority:
1. group-aware: a duplicate group, a lesion (images sharing a metadata `lesion_id`) and a patient
   (`patient_id`) are one unit, joined where they overlap, and lie wholly in one split;
2. stable: an image keeps the split it had in earlier snapshots (only images new
   to the lineage are assigned), so a test image never becomes a training image;
3. stratified per class to the ratios, deterministic for a given seed.
"""

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from core.limits import field_limits
from curation.models import Image, ImageSource, LabelClass, Snapshot, SnapshotItem, Split

SPLITS = (Split.TRAIN, Split.VAL, Split.TEST)
# When a group's members come from different earlier splits, the group goes to the
# most protected one: an image that was ever evaluated on stays out of training.
SPLIT_PRIORITY = {Split.TEST: 0, Split.VAL: 1, Split.TRAIN: 2}
INSERT_BATCH = 5000


@dataclass
class _Unit:
    """Images joined by duplicate groups, lesions and patients (or one lone image): they move between
    splits as a whole."""

    key: str
    images: list[tuple[int, str, int]] = field(default_factory=list)  # (image id, sha256, label id)
    split: str | None = None

    @cached_property
    def label_id(self) -> int:
        return Counter(label for _, _, label in self.images).most_common(1)[0][0]


def _validate(
    *, name: str, seed: int, ratios: list[float], classes: list[str] | None, cap_per_class: int | None
) -> None:
    if not name.strip():
        raise ValidationError("A snapshot needs a name.")
    longest = field_limits(Snapshot, "name")["max_length"]
    if len(name) > longest:
        raise ValidationError(f"The name has {len(name)} characters; at most {longest} are allowed.")
    seeds = field_limits(Snapshot, "seed")
    if not seeds["min_value"] <= seed <= seeds["max_value"]:
        raise ValidationError(f"The seed must lie between {seeds['min_value']} and {seeds['max_value']}.")
    if not all(math.isfinite(r) for r in ratios):
        raise ValidationError(f"Ratios must be finite numbers; got {ratios}.")
    if Snapshot.objects.filter(name=name.strip()).exists():
        raise ValidationError(f"A snapshot named {name.strip()!r} exists already; snapshots never change.")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6 or ratios[0] <= 0:
        raise ValidationError(
            f"Ratios must be three non-negative numbers for train, val and test that sum to 1, "
            f"with train above 0; got {ratios}."
        )
    if classes:
        known = set(LabelClass.objects.values_list("code", flat=True))
        unknown = sorted(set(classes) - known)
        if unknown:
            raise ValidationError(f"Unknown class codes: {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
    most = field_limits(Snapshot, "cap_per_class")["max_value"]
    if cap_per_class is not None and not 1 <= cap_per_class <= most:
        raise ValidationError(f"The cap per class must lie between 1 and {most}.")


def _seeded_order(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def _previous_splits() -> dict[int, str]:
    """The split each image had in earlier snapshots (test wins should they ever disagree)."""
    previous: dict[int, str] = {}
    rows = SnapshotItem.objects.order_by().values_list("image_id", "split").distinct()
    for image_id, split in rows.iterator(chunk_size=10_000):
        if image_id not in previous or SPLIT_PRIORITY[split] < SPLIT_PRIORITY[previous[image_id]]:
            previous[image_id] = split
    return previous


def _group_keys(row: tuple) -> list[str]:
    """What ties an image to others for the split: its duplicate group, lesion and patient.

    Lesion and patient ids are scoped by the source the image first came from: two clinics may both
    have a patient "17".
    """
    _, _, _, group_id, metadata, source_id = row
    keys = [f"group:{group_id}"] if group_id is not None else []
    for field_name in ("lesion_id", "patient_id"):
        value = (metadata or {}).get(field_name)
        if value not in (None, ""):
            keys.append(f"{field_name}:{source_id}:{value}")
    return keys


def _select_images(*, classes: list[str] | None, cap_per_class: int | None, seed: int) -> list[tuple]:
    """(id, sha256, label id, duplicate group id, metadata, first source id) of the labeled images that go in."""
    first_source = ImageSource.objects.filter(image=OuterRef("pk")).order_by("pk").values("source_id")[:1]
    images = Image.objects.labeled().annotate(first_source=Subquery(first_source))
    if classes:
        images = images.filter(label__code__in=classes)
    rows = list(
        images.order_by("pk").values_list("pk", "sha256", "label_id", "duplicate_group_id", "metadata", "first_source")
    )
    if cap_per_class is None:
        return rows
    # Down-sample a dominant class: images already in the lineage first (they keep
    # their place), then a seeded random order.
    seen_before = set(SnapshotItem.objects.order_by().values_list("image_id", flat=True).distinct())
    per_class: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        per_class[row[2]].append(row)
    kept = []
    for class_rows in per_class.values():
        class_rows.sort(key=lambda r: (r[0] not in seen_before, _seeded_order(seed, r[1])))
        kept.extend(class_rows[:cap_per_class])
    return sorted(kept)


def _units(rows: list[tuple]) -> list[_Unit]:
    """Union-find over the images and their group keys: images that share any key are one unit."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for row in rows:
        image_key = f"image:{row[1]}"
        for key in _group_keys(row):
            root_a, root_b = find(image_key), find(key)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    units: dict[str, _Unit] = {}
    for image_id, sha256, label_id, *_ in rows:
        root = find(f"image:{sha256}")
        units.setdefault(root, _Unit(key=root)).images.append((image_id, sha256, label_id))
    return list(units.values())


def _assign_splits(units: list[_Unit], *, ratios: list[float], seed: int) -> None:
    previous = _previous_splits()
    counts: dict[int, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    new_units: list[_Unit] = []
    for unit in units:
        earlier = [previous[image_id] for image_id, _, _ in unit.images if image_id in previous]
        totals[unit.label_id] += len(unit.images)
        if earlier:
            unit.split = min(earlier, key=SPLIT_PRIORITY.__getitem__)
            counts[unit.label_id][unit.split] += len(unit.images)
        else:
            new_units.append(unit)
    # Deterministic for a seed: a seeded order of units (by content), big groups first
    # so that the small ones can even out what they leave.
    new_units.sort(key=lambda unit: _seeded_order(seed, unit.images[0][1]))
    new_units.sort(key=lambda unit: len(unit.images), reverse=True)
    ratio_of = dict(zip(SPLITS, ratios, strict=True))
    for unit in new_units:
        have = counts[unit.label_id]
        target = {split: ratio_of[split] * totals[unit.label_id] for split in SPLITS}
        # The split furthest below its target, relative to its size.
        unit.split = max(
            (split for split in SPLITS if ratio_of[split] > 0),
            key=lambda split: ((target[split] - have[split]) / ratio_of[split], -SPLITS.index(split)),
        )
        have[unit.split] += len(unit.images)


def content_hash(lines: list[tuple[str, str, str]]) -> str:
    """sha256 over the sorted (image sha256, label code, split) of the items: equal content, equal hash."""
    digest = hashlib.sha256()
    for sha256, code, split in sorted(lines):
        digest.update(f"{sha256},{code},{split}\n".encode())
    return digest.hexdigest()


def _leakage(rows: list[tuple], split_of: dict[int, str]) -> dict[str, int]:
    """Duplicate groups, lesions and patients whose images were given more than one split."""
    splits_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for key in _group_keys(row):
            splits_of[key].add(split_of[row[0]])
    crossing = Counter(key.split(":", 1)[0] for key, splits in splits_of.items() if len(splits) > 1)
    return {"duplicate_groups": crossing["group"], "lesions": crossing["lesion_id"], "patients": crossing["patient_id"]}


def _stats(units: list[_Unit], codes: dict[int, str], leakage: dict[str, int], rows: list[tuple]) -> dict:
    per_class: dict[str, dict[str, int]] = {}
    per_split: Counter = Counter()
    for unit in units:
        for _, _, label_id in unit.images:
            row = per_class.setdefault(codes[label_id], {split.value: 0 for split in SPLITS} | {"total": 0})
            row[unit.split] += 1
            row["total"] += 1
            per_split[unit.split] += 1
    exclusions = dict(
        Image.objects.excluded().values("exclusion_reason").annotate(n=Count("pk")).values_list("exclusion_reason", "n")
    )
    in_groups = [row[3] for row in rows if row[3] is not None]
    return {
        "per_class": dict(sorted(per_class.items(), key=lambda kv: list(codes.values()).index(kv[0]))),
        "per_split": {split.value: per_split.get(split, 0) for split in SPLITS},
        "total": sum(per_split.values()),
        "exclusions": dict(sorted(exclusions.items())),
        "duplicate_groups": len(set(in_groups)),
        "images_in_duplicate_groups": len(in_groups),
        "lesions": len({key for row in rows for key in _group_keys(row) if key.startswith("lesion_id:")}),
        "patients": len({key for row in rows for key in _group_keys(row) if key.startswith("patient_id:")}),
        # Groups of each kind crossing splits; always 0 (the freeze refuses otherwise).
        "leakage": sum(leakage.values()),
        "leakage_by_kind": leakage,
    }


def snapshot_create(
    *,
    name: str,
    seed: int = 0,
    ratios: list[float] | tuple[float, ...] = (0.8, 0.1, 0.1),
    classes: list[str] | None = None,
    cap_per_class: int | None = None,
    created_by=None,
) -> Snapshot:
    """Freeze every labeled image (minus exclusions) into a new snapshot with its splits."""
    ratios = [float(r) for r in ratios]
    name = name.strip()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # One consistent view of labels, groups and earlier snapshots for the whole build.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _validate(name=name, seed=seed, ratios=ratios, classes=classes, cap_per_class=cap_per_class)
        rows = _select_images(classes=classes, cap_per_class=cap_per_class, seed=seed)
        units = _units(rows)
        _assign_splits(units, ratios=ratios, seed=seed)
        split_of = {image_id: unit.split for unit in units for image_id, _, _ in unit.images}
        leakage = _leakage(rows, split_of)
        if any(leakage.values()):
            # Cannot happen by construction; refuse rather than store a leaking snapshot.
            raise ValidationError(f"Groups would cross splits ({leakage}); nothing was stored.")
        codes = dict(LabelClass.objects.values_list("pk", "code"))
        index_of = dict(LabelClass.objects.values_list("pk", "index"))
        items = sorted(
            (
                (unit.split, index_of[label_id], sha256, image_id, label_id)
                for unit in units
                for image_id, sha256, label_id in unit.images
            ),
            key=lambda item: (SPLITS.index(item[0]), item[1], item[2]),
        )
        stats = _stats(units, codes, leakage, rows)
        snapshot = Snapshot(
            name=name,
            seed=seed,
            ratios=ratios,
            classes=sorted(classes or []),
            cap_per_class=cap_per_class,
            content_hash=content_hash([(sha256, codes[label_id], split) for split, _, sha256, _, label_id in items]),
            stats=stats,
            item_count=len(items),
            created_by=created_by,
            created_at=timezone.now(),
        )
        snapshot.save(force_insert=True)
        SnapshotItem.objects.bulk_create(
            (
                SnapshotItem(snapshot=snapshot, image_id=image_id, label_id=label_id, split=split)
                for split, _, _, image_id, label_id in items
            ),
            batch_size=INSERT_BATCH,
        )
    return snapshot
