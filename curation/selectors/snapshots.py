from collections.abc import Iterator

from django.db.models import Count, F, Q, QuerySet

from curation.models import Image, Snapshot, SnapshotItem, Split

EXPORT_COLUMNS = ("image_id", "sha256", "label_code", "label_index", "split", "image_url", "width", "height")


def snapshot_list() -> QuerySet[Snapshot]:
    return Snapshot.objects.select_related("created_by").order_by("-created_at", "-pk")


def snapshot_items(snapshot: Snapshot, *, split: str | None = None) -> QuerySet[SnapshotItem]:
    items = SnapshotItem.objects.filter(snapshot=snapshot)
    if split:
        items = items.filter(split=split)
    return items.order_by("pk")


def snapshot_export_rows(snapshot: Snapshot, *, split: str | None, image_url_prefix: str) -> Iterator[dict]:
    """One dict per item in a stable order, streamed from a server-side cursor (constant memory).

    width and height are those of the served (sanitized) image that image_url returns.
    """
    rows = snapshot_items(snapshot, split=split).values_list(
        "image_id",
        "image__sha256",
        "label__code",
        "label__index",
        "split",
        "image__sanitized_width",
        "image__sanitized_height",
    )
    for image_id, sha256, code, index, item_split, width, height in rows.iterator(chunk_size=2000):
        yield {
            "image_id": image_id,
            "sha256": sha256,
            "label_code": code,
            "label_index": index,
            "split": item_split,
            "image_url": f"{image_url_prefix}{image_id}/image.jpg",
            "width": width,
            "height": height,
        }


def snapshot_leakage_now(snapshot: Snapshot) -> int:
    """Duplicate groups as they are today (they may have been recomputed since the freeze)
    whose members in the snapshot lie in more than one split."""
    return (
        SnapshotItem.objects.filter(snapshot=snapshot, image__duplicate_group__isnull=False)
        .values("image__duplicate_group")
        .annotate(splits=Count("split", distinct=True))
        .filter(splits__gt=1)
        .count()
    )


def snapshot_stale_items(snapshot: Snapshot) -> QuerySet[SnapshotItem]:
    """Items whose image's curated label changed after the freeze (relabeled or now excluded)."""
    return (
        SnapshotItem.objects.filter(snapshot=snapshot)
        .filter(~Q(image__status=Image.Status.LABELED) | ~Q(image__label_id=F("label_id")))
        .select_related("image", "image__label", "label")
        .order_by("pk")
    )


def snapshot_diff(base: Snapshot, other: Snapshot) -> dict:
    """What changed from `base` to `other`: images added, removed, relabeled, moved between splits."""
    before = {
        image_id: (label, split)
        for image_id, label, split in SnapshotItem.objects.filter(snapshot=base).values_list(
            "image_id", "label__code", "split"
        )
    }
    after = {
        image_id: (label, split)
        for image_id, label, split in SnapshotItem.objects.filter(snapshot=other).values_list(
            "image_id", "label__code", "split"
        )
    }
    common = before.keys() & after.keys()
    return {
        "base": base.pk,
        "other": other.pk,
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "relabeled": [
            {"image": i, "from": before[i][0], "to": after[i][0]} for i in sorted(common) if before[i][0] != after[i][0]
        ],
        "moved": [
            {"image": i, "from": before[i][1], "to": after[i][1]} for i in sorted(common) if before[i][1] != after[i][1]
        ],
    }


def lineage_test_labels() -> dict[int, int]:
    """The lineage's protected test split: image id → label id.

    Every image a snapshot ever put in its test split, for good: a snapshot keeps an image's earlier split (see
    ``curation.services.snapshots``), so this set only grows, and models trained on different snapshots can be
    judged on the images they share. Each image is labeled as in the newest snapshot that holds it; images excluded
    since are left out.
    """
    labels: dict[int, int] = {}
    rows = (
        SnapshotItem.objects.filter(split=Split.TEST).order_by("snapshot_id", "pk").values_list("image_id", "label_id")
    )
    for image_id, label_id in rows.iterator(chunk_size=10_000):
        labels[image_id] = label_id
    excluded = set(Image.objects.excluded().filter(pk__in=list(labels)).values_list("pk", flat=True))
    return {image_id: label_id for image_id, label_id in labels.items() if image_id not in excluded}


def snapshot_test_labels(snapshot: Snapshot) -> dict[int, int]:
    """image id → label id of one snapshot's test split, in item order."""
    return dict(snapshot_items(snapshot, split=Split.TEST).values_list("image_id", "label_id"))
