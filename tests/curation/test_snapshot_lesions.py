"""Photos of one lesion, or of one patient, never straddle splits (HAM10000 has several photos per lesion)."""

import pytest

from curation.models import Image, LabelClass, Snapshot, SnapshotItem
from curation.services.snapshots import _assign_splits, _select_images, _units, snapshot_create

pytestmark = pytest.mark.django_db


def labeled(image_factory, n: int, *, metadata=lambda number: {}) -> list[Image]:
    label = LabelClass.objects.get(code="melanocytic_nevi")
    code = "melanocytic_nevi"
    return [
        image_factory(status=Image.Status.LABELED, label=label, metadata=metadata(number), source_code=code)
        for number in range(n)
    ]


def split_of(snapshot: Snapshot) -> dict[int, str]:
    return dict(SnapshotItem.objects.filter(snapshot=snapshot).values_list("image_id", "split"))


def test_a_lesions_three_photos_always_share_a_split_across_seeds(image_factory):
    # 30 lesions of 3 photos each, and 30 lone photos.
    images = labeled(image_factory, 90, metadata=lambda number: {"lesion_id": f"HAM_{number // 3:07d}"})
    images += labeled(image_factory, 30)

    # Each seed as the first snapshot of a lineage would split it (later snapshots keep earlier splits).
    for seed in range(8):
        units = _units(_select_images(classes=None, cap_per_class=None, seed=seed))
        _assign_splits(units, ratios=[0.6, 0.2, 0.2], seed=seed)
        splits = {image_id: unit.split for unit in units for image_id, _, _ in unit.images}
        for lesion in range(30):
            members = [image.pk for image in images[lesion * 3 : lesion * 3 + 3]]
            assert len({splits[pk] for pk in members}) == 1, (seed, lesion, [splits[pk] for pk in members])
        assert len(set(splits.values())) == 3, "the split still uses all three parts"

    snapshot = snapshot_create(name="lesions", seed=1, ratios=[0.6, 0.2, 0.2])
    splits = split_of(snapshot)
    assert all(len({splits[image.pk] for image in images[n * 3 : n * 3 + 3]}) == 1 for n in range(30))
    assert snapshot.stats["leakage"] == 0
    assert snapshot.stats["leakage_by_kind"] == {"duplicate_groups": 0, "lesions": 0, "patients": 0}
    assert snapshot.stats["lesions"] == 30


def test_a_patients_lesions_and_a_duplicate_group_joined_through_them_are_one_unit(image_factory):
    from curation.models import DuplicateGroup

    images = labeled(
        image_factory,
        40,
        metadata=lambda number: {"patient_id": f"P{number // 4}", "lesion_id": f"L{number // 2}"},
    )
    group = DuplicateGroup.objects.create()
    # Patient P0's photo and patient P5's photo are near copies: both patients must share a split.
    Image.objects.filter(pk__in=[images[0].pk, images[20].pk]).update(duplicate_group=group)

    snapshot = snapshot_create(name="patients", seed=3, ratios=[0.5, 0.25, 0.25])
    splits = split_of(snapshot)

    for patient in range(10):
        assert len({splits[image.pk] for image in images[patient * 4 : patient * 4 + 4]}) == 1
    assert splits[images[0].pk] == splits[images[23].pk], "joined through the duplicate group"
    assert snapshot.stats["patients"] == 10 and snapshot.stats["leakage"] == 0
