"""What ties images together when data is split: the keys other apps group by (cross-validation folds in ml).

An image's keys are its duplicate group and, where its metadata has them, its lesion and patient ids, scoped by the
source it first came from (two clinics may both have a patient "17"). Images sharing any key, directly or through
others, belong in the same split or fold.
"""

from django.db.models import OuterRef, Subquery

from curation.models import ImageSource, Snapshot, SnapshotItem

GROUPING_METADATA = ("lesion_id", "patient_id")  # keys of Image.metadata, where an import recorded them


def image_group_keys(group_id: int | None, metadata: dict | None, source_id: int | None) -> list[str]:
    keys = [f"group:{group_id}"] if group_id is not None else []
    for field_name in GROUPING_METADATA:
        value = (metadata or {}).get(field_name)
        if value not in (None, ""):
            keys.append(f"{field_name}:{source_id}:{value}")
    return keys


def snapshot_item_group_keys(snapshot: Snapshot, *, splits: list[str] | None = None) -> dict[int, list[str]]:
    """image id → its grouping keys, for the snapshot's items (of these splits), in one query."""
    first_source = ImageSource.objects.filter(image=OuterRef("image_id")).order_by("pk").values("source_id")[:1]
    items = SnapshotItem.objects.filter(snapshot=snapshot).annotate(first_source=Subquery(first_source))
    if splits:
        items = items.filter(split__in=splits)
    rows = items.order_by("pk").values_list("image_id", "image__duplicate_group_id", "first_source", "image__metadata")
    keys = {}
    for image_id, group_id, source_id, metadata in rows.iterator(chunk_size=10_000):
        keys[image_id] = image_group_keys(group_id, metadata, source_id)
    return keys
