import csv
import hashlib
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from curation.models import DuplicateGroup, FrozenError, Image, LabelClass, Snapshot, SnapshotItem
from curation.services.images import image_exclude, image_set_label
from curation.services.snapshots import _assign_splits, _Unit, snapshot_create
from tests.conftest import PASSWORD
from tests.samples import labeled_demo_snapshot

pytestmark = pytest.mark.django_db


def labeled(image_factory, code: str, n: int, **fields) -> list[Image]:
    label = LabelClass.objects.get(code=code)
    return image_factory.create_batch(n, status="labeled", label=label, **fields)


def splits_of(snapshot: Snapshot) -> dict[int, str]:
    return dict(snapshot.items.values_list("image_id", "split"))


# --- content ---------------------------------------------------------------------------------------------------


def test_only_labeled_images_go_in_with_their_labels(image_factory):
    eczema = labeled(image_factory, "eczema", 5)
    image_factory(status="pending")
    image_factory(status="disputed")
    image_factory(status="excluded", exclusion_reason="blurry")
    image_factory(status="excluded", exclusion_reason="duplicate")

    snapshot = snapshot_create(name="s1")

    assert set(splits_of(snapshot)) == {image.pk for image in eczema}
    assert set(snapshot.items.values_list("label__code", flat=True)) == {"eczema"}
    assert snapshot.stats["exclusions"] == {"blurry": 1, "duplicate": 1}


def test_exclusion_reasons_read_as_words_on_the_snapshot_and_images_pages(client, curator, image_factory):
    labeled(image_factory, "eczema", 2)
    image_factory(status="excluded", exclusion_reason="blurry")
    image_factory(status="excluded", exclusion_reason="duplicate")
    snapshot = snapshot_create(name="s1")
    client.force_login(curator)

    snapshot_page = client.get(f"/snapshots/{snapshot.pk}/").content.decode()
    images_page = client.get("/curation/?status=excluded").content.decode()

    for page in (snapshot_page, images_page):
        assert "Blurry / out of focus" in page and "Duplicate of a kept image" in page
        assert ">blurry<" not in page and "excluded: blurry" not in page and ">duplicate<" not in page


def test_splits_follow_the_ratios_per_class(image_factory):
    for code in ("eczema", "melanoma", "melanocytic_nevi"):
        labeled(image_factory, code, 100)

    snapshot = snapshot_create(name="s1", seed=7)

    for code in ("eczema", "melanoma", "melanocytic_nevi"):
        counts = snapshot.stats["per_class"][code]
        assert (counts["train"], counts["val"], counts["test"], counts["total"]) == (80, 10, 10, 100)
    assert snapshot.stats["per_split"] == {"train": 240, "val": 30, "test": 30}
    assert snapshot.item_count == 300


def test_custom_ratios_classes_and_cap(image_factory):
    labeled(image_factory, "melanocytic_nevi", 50)
    labeled(image_factory, "melanoma", 20)
    labeled(image_factory, "eczema", 20)

    snapshot = snapshot_create(
        name="s1", ratios=[0.6, 0.2, 0.2], classes=["melanocytic_nevi", "melanoma"], cap_per_class=20
    )

    assert snapshot.stats["per_class"]["melanocytic_nevi"]["total"] == 20, "the dominant class is down-sampled"
    assert snapshot.stats["per_class"]["melanoma"] == {"train": 12, "val": 4, "test": 4, "total": 20}
    assert "eczema" not in snapshot.stats["per_class"]


def test_the_assignment_is_deterministic_for_a_seed():
    def assign(seed):
        units = [
            _Unit(key=f"image:{n}", images=[(n, hashlib.sha256(str(n).encode()).hexdigest(), 1)]) for n in range(1, 101)
        ]
        _assign_splits(units, ratios=[0.8, 0.1, 0.1], seed=seed)
        return {unit.images[0][0]: unit.split for unit in units}

    assert assign(3) == assign(3)
    assert assign(3) != assign(4)


# --- group-aware and stable ----------------------------------------------------------------------------------------


def test_a_duplicate_group_lies_wholly_in_one_split(image_factory):
    groups = [DuplicateGroup.objects.create() for _ in range(15)]
    for group in groups:
        labeled(image_factory, "psoriasis_lichen_planus", 4, duplicate_group=group)
    labeled(image_factory, "psoriasis_lichen_planus", 40)

    snapshot = snapshot_create(name="s1")

    for group in groups:
        assert (
            len(
                {
                    split
                    for image, split in splits_of(snapshot).items()
                    if image in set(group.images.values_list("pk", flat=True))
                }
            )
            == 1
        )
    assert snapshot.stats["leakage"] == 0
    assert snapshot.stats["duplicate_groups"] == 15


def test_images_keep_their_split_in_later_snapshots_whatever_the_seed(image_factory):
    first_images = labeled(image_factory, "bcc", 50)
    first = snapshot_create(name="s1", seed=1)
    new_images = labeled(image_factory, "bcc", 50)

    second = snapshot_create(name="s2", seed=99)

    before, after = splits_of(first), splits_of(second)
    assert all(after[image.pk] == before[image.pk] for image in first_images)
    assert all(image.pk in after for image in new_images)
    assert second.stats["per_class"]["bcc"] == {"train": 80, "val": 10, "test": 10, "total": 100}


def test_a_group_found_later_across_splits_moves_wholly_to_the_most_protected_split(image_factory):
    images = labeled(image_factory, "eczema", 30)
    first = snapshot_create(name="s1")
    before = splits_of(first)
    in_test = next(i for i in images if before[i.pk] == "test")
    in_train = next(i for i in images if before[i.pk] == "train")
    group = DuplicateGroup.objects.create()
    Image.objects.filter(pk__in=[in_test.pk, in_train.pk]).update(duplicate_group=group)

    second = snapshot_create(name="s2")

    after = splits_of(second)
    assert after[in_test.pk] == after[in_train.pk] == "test", "a test image never becomes a training image"
    assert second.stats["leakage"] == 0


def test_same_content_same_hash_and_the_hash_is_over_sorted_items(image_factory):
    labeled(image_factory, "eczema", 10)
    labeled(image_factory, "melanoma", 10)

    first = snapshot_create(name="s1", seed=5)
    second = snapshot_create(name="s2", seed=6)

    assert first.content_hash == second.content_hash
    lines = sorted(
        f"{sha},{code},{split}\n"
        for sha, code, split in first.items.values_list("image__sha256", "label__code", "split")
    )
    assert first.content_hash == hashlib.sha256("".join(lines).encode()).hexdigest()
    image_set_label(image=Image.objects.first(), label=LabelClass.objects.get(code="bcc"), actor=None, action="test")
    assert snapshot_create(name="s3").content_hash != first.content_hash


# --- frozen -------------------------------------------------------------------------------------------------------


def test_snapshots_are_frozen_in_the_models(image_factory):
    labeled(image_factory, "eczema", 3)
    snapshot = snapshot_create(name="s1")
    item = snapshot.items.first()

    with pytest.raises(FrozenError):
        snapshot.save()
    with pytest.raises(FrozenError):
        snapshot.delete()
    with pytest.raises(FrozenError):
        item.save()
    with pytest.raises(FrozenError):
        item.delete()
    with pytest.raises(FrozenError):
        SnapshotItem.objects.filter(snapshot=snapshot).update(split="test")
    with pytest.raises(FrozenError):
        SnapshotItem.objects.filter(snapshot=snapshot).delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE curation_snapshotitem SET split = 'train'",
        "DELETE FROM curation_snapshotitem",
        "UPDATE curation_snapshot SET name = 'renamed'",
        "DELETE FROM curation_snapshot",
    ],
)
def test_snapshots_are_frozen_in_the_database_too(image_factory, statement):
    labeled(image_factory, "eczema", 3)
    snapshot_create(name="s1")

    with pytest.raises(DatabaseError, match="frozen"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert SnapshotItem.objects.count() == 3
    assert Snapshot.objects.get().name == "s1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ratios": [0.5, 0.5, 0.5]}, "sum to 1"),
        ({"ratios": [0.0, 0.5, 0.5]}, "train above 0"),
        ({"ratios": [0.8, 0.2]}, "three non-negative numbers"),
        ({"classes": ["rosacea"]}, "Unknown class codes: rosacea"),
        ({"cap_per_class": 0}, "between 1 and 2147483647"),
        ({"cap_per_class": 10**13}, "between 1 and 2147483647"),
        ({"seed": 10**13}, "seed must lie between"),
        ({"ratios": [float("nan"), 0.5, 0.5]}, "finite"),
        ({"name": "x" * 201}, "at most 200"),
        ({"name": "  "}, "needs a name"),
    ],
)
def test_bad_snapshot_options_are_refused_and_nothing_is_stored(image_factory, options, message):
    labeled(image_factory, "eczema", 3)

    with pytest.raises(ValidationError, match=message):
        snapshot_create(**{"name": "s1", **options})

    assert Snapshot.objects.count() == 0
    assert SnapshotItem.objects.count() == 0


def test_a_name_is_used_once(image_factory):
    labeled(image_factory, "eczema", 3)
    snapshot_create(name="s1")

    with pytest.raises(ValidationError, match="exists already"):
        snapshot_create(name="s1")


# --- stale items, diff -------------------------------------------------------------------------------------------


def test_stale_items_and_diff_after_labels_change(client, curator, image_factory):
    images = labeled(image_factory, "eczema", 20)
    first = snapshot_create(name="s1")
    image_set_label(image=images[0], label=LabelClass.objects.get(code="atopic_dermatitis"), actor=None, action="t")
    image_exclude(image=images[1], reason="blurry", actor=None, action="t")
    added = labeled(image_factory, "melanoma", 1)[0]
    second = snapshot_create(name="s2")
    client.force_login(curator)

    page = client.get(f"/snapshots/{first.pk}/").content.decode()
    diff = client.get(f"/api/v1/snapshots/{first.pk}/diff/{second.pk}/", HTTP_ACCEPT="application/json")
    diff_page = client.get(f"/snapshots/{first.pk}/diff/{second.pk}/").content.decode()

    assert 'Stale items <small class="muted">2</small>' in page
    body = diff.json()
    assert body["added"] == [added.pk]
    assert body["removed"] == [images[1].pk]
    assert body["relabeled"] == [{"image": images[0].pk, "from": "eczema", "to": "atopic_dermatitis"}]
    assert body["moved"] == []
    assert "Relabeled" in diff_page and "Atopic dermatitis" in diff_page and "atopic_dermatitis" not in diff_page


# --- command and API -----------------------------------------------------------------------------------------------


def test_create_snapshot_command_prints_a_json_summary(image_factory):
    labeled(image_factory, "eczema", 10)
    out = io.StringIO()

    call_command("create_snapshot", "cli", "--seed", "3", "--ratios", "0.6", "0.2", "0.2", "--json", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["items"] == 10 and summary["seed"] == 3 and summary["ratios"] == [0.6, 0.2, 0.2]
    assert summary["stats"]["leakage"] == 0
    with pytest.raises(CommandError, match="sum to 1"):
        call_command("create_snapshot", "bad", "--ratios", "0.9", "0.9", "0.9")


def test_snapshot_api_create_list_detail_and_frozen_methods(api, curator, exporter, reviewer, image_factory):
    labeled(image_factory, "eczema", 10)

    created = api(curator).post("/api/v1/snapshots/", {"name": "api", "seed": 2}, format="json")
    snapshot_id = created.json()["id"]
    listed = api(exporter).get("/api/v1/snapshots/")
    detail = api(exporter).get(f"/api/v1/snapshots/{snapshot_id}/").json()

    assert created.status_code == 201
    assert listed.json()["count"] == 1
    assert set(detail) >= {"id", "name", "content_hash", "seed", "ratios", "stats", "created_by", "created_at"}
    assert detail["created_by"] == "curator" and detail["stats"]["leakage"] == 0
    assert api(exporter).post("/api/v1/snapshots/", {"name": "x"}, format="json").status_code == 403
    assert api(reviewer).get("/api/v1/snapshots/").status_code == 403
    assert api(None).get("/api/v1/snapshots/").status_code == 401
    assert api(curator).get("/api/v1/snapshots/999/").status_code == 404
    assert api(curator).patch(f"/api/v1/snapshots/{snapshot_id}/", {"name": "y"}, format="json").status_code == 405
    assert api(curator).delete(f"/api/v1/snapshots/{snapshot_id}/").status_code == 405
    assert api(curator).post("/api/v1/snapshots/", {"name": "z", "ratios": [1, 1, 1]}, format="json").status_code == 400


@pytest.fixture
def real_snapshot(tmp_path):
    return labeled_demo_snapshot(
        tmp_path / "set", name="Real Set", per_class=5, size=(160, 120), classes=[1, 2, 10], ratios=[0.6, 0.2, 0.2]
    )


def test_export_streams_csv_and_jsonl_rows_in_a_stable_order(api, exporter, real_snapshot):
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": exporter.username, "password": PASSWORD}).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    as_csv = client.get(f"/api/v1/snapshots/{real_snapshot.pk}/export/?split=all&format=csv")
    again = client.get(f"/api/v1/snapshots/{real_snapshot.pk}/export/?split=all&format=csv")
    as_jsonl = client.get(f"/api/v1/snapshots/{real_snapshot.pk}/export/?split=test&format=jsonl")

    assert as_csv.streaming
    text = b"".join(as_csv.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["image_id", "sha256", "label_code", "label_index", "split", "image_url", "width", "height"]
    assert len(rows) == 15
    assert text == b"".join(again.streaming_content).decode()
    assert as_csv["Content-Disposition"] == f'attachment; filename="real-set-{real_snapshot.pk}-all.csv"'
    assert {row["label_code"]: row["label_index"] for row in rows} == {
        "eczema": "1",
        "melanoma": "2",
        "viral_infections": "10",
    }
    image = Image.objects.get(pk=rows[0]["image_id"])
    assert rows[0]["sha256"] == image.sha256 and int(rows[0]["width"]) == image.sanitized_width
    assert client.get(rows[0]["image_url"]).status_code == 200, "the URL works with the same token"
    lines = [json.loads(line) for line in b"".join(as_jsonl.streaming_content).decode().splitlines()]
    assert {line["split"] for line in lines} == {"test"}
    assert len(lines) == real_snapshot.stats["per_split"]["test"] == 3


def test_export_refuses_bad_parameters_and_callers(api, curator, reviewer, real_snapshot):
    url = f"/api/v1/snapshots/{real_snapshot.pk}/export/"

    bad_split = api(curator).get(url + "?split=holdout")
    bad_format = api(curator).get(url + "?format=xlsx")

    assert bad_split.status_code == 400 and "train" in str(bad_split.json()["split"])
    assert bad_format.status_code == 400 and "jsonl" in str(bad_format.json()["format"])
    assert api(curator).get("/api/v1/snapshots/999/export/").status_code == 404
    assert api(None).get(url).status_code == 401
    assert api(reviewer).get(url).status_code == 403


def test_archive_is_a_zip_keras_reads_per_split(api, exporter, real_snapshot, tmp_path):
    response = api(exporter).get(f"/api/v1/snapshots/{real_snapshot.pk}/archive/")

    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
        stats = json.loads(archive.read("stats.json"))
        archive.extractall(tmp_path / "out")
    assert len(manifest) == 15
    assert any(name.startswith("train/01. Eczema/") and name.endswith(".jpg") for name in names)
    assert stats["content_hash"] == real_snapshot.content_hash
    assert stats["class_folders"] == ["01. Eczema", "02. Melanoma", "10. Warts, molluscum and other viral infections"]

    import keras

    dataset = keras.utils.image_dataset_from_directory(
        tmp_path / "out" / "test", image_size=(64, 64), batch_size=4, shuffle=False
    )
    assert dataset.class_names == stats["class_folders"], "folder order is class-index order"
    assert sum(int(batch[0].shape[0]) for batch in dataset) == real_snapshot.stats["per_split"]["test"]


def test_snapshot_pages(client, curator, reviewer, real_snapshot):
    client.force_login(reviewer)
    assert client.get("/snapshots/").status_code == 403
    client.force_login(curator)

    listing = client.get("/snapshots/").content.decode()
    created = client.post(
        "/snapshots/", {"name": "from-page", "ratio_train": "0.8", "ratio_val": "0.1", "ratio_test": "0.1", "seed": "1"}
    )
    refused = client.post(
        "/snapshots/", {"name": "bad", "ratio_train": "0.8", "ratio_val": "0.8", "ratio_test": "0.1"}, follow=True
    ).content.decode()
    detail = client.get(f"/snapshots/{real_snapshot.pk}/").content.decode()

    assert "Real Set" in listing
    assert created.status_code == 302
    assert "sum to 1" in refused
    assert 'data-testid="leakage">0<' in detail and "Stale items" in detail and "Start training" in detail
