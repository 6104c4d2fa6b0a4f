import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from core.models import AuditEvent
from curation.demo_images import KAGGLE_FOLDERS
from curation.models import Image, NotDuplicateDecision
from tests.samples import encode, write_files


def noise(seed: int, size=(160, 120)) -> PILImage.Image:
    """Unrelated pictures: their pHashes are far apart."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return PILImage.fromarray(small).resize(size, PILImage.Resampling.BICUBIC)


def near_copies(tmp_path, *, groups: int = 2, copies: int = 2, singles: int = 3):
    """`groups` pictures with re-encoded, resized copies, plus unrelated single pictures."""
    files = {}
    for group in range(groups):
        picture = noise(group)
        files[f"{KAGGLE_FOLDERS[1]}/g{group}_original.png"] = encode(picture, "PNG")
        for copy in range(copies - 1):
            smaller = picture.resize((int(160 * (0.9 - 0.1 * copy)), int(120 * (0.9 - 0.1 * copy))))
            files[f"{KAGGLE_FOLDERS[2]}/g{group}_copy{copy}.jpg"] = encode(smaller, "JPEG", quality=70)
    for single in range(singles):
        files[f"{KAGGLE_FOLDERS[5]}/single{single}.png"] = encode(noise(100 + single), "PNG")
    write_files(tmp_path / "set", files)
    out = io.StringIO()
    call_command("import_images", str(tmp_path / "set"), "--source", "s", "--json", stdout=out)
    return json.loads(out.getvalue().splitlines()[-1])


def find_duplicates(*args: str) -> dict:
    out = io.StringIO()
    call_command("find_duplicates", "--json", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def group_members() -> list[set[str]]:
    groups: dict[int, set[str]] = {}
    for image in Image.objects.exclude(duplicate_group=None).prefetch_related("provenance"):
        name = image.provenance.all()[0].source_path.rsplit("/", 1)[-1].split("_")[0]
        groups.setdefault(image.duplicate_group_id, set()).add(name)
    return sorted(groups.values(), key=sorted)


@pytest.mark.django_db
def test_import_groups_re_encoded_copies_and_leaves_unrelated_images_alone(tmp_path):
    summary = near_copies(tmp_path, groups=2, copies=3)

    assert summary["duplicate_groups"] == 2
    assert [len(g) for g in group_members()] == [1, 1]  # one name per group: g0, g1
    assert Image.objects.filter(provenance__source_path__contains="single", duplicate_group__isnull=False).count() == 0
    assert Image.objects.exclude(duplicate_group=None).count() == 6


@pytest.mark.django_db
def test_find_duplicates_reports_and_a_zero_threshold_finds_fewer(tmp_path):
    near_copies(tmp_path, groups=2, copies=2)

    default = find_duplicates()
    strict = find_duplicates("--threshold", "0")

    assert default["groups"] == 2 and default["images_in_groups"] == 4 and default["images"] == 7
    assert strict["groups"] <= default["groups"]
    assert set(default) >= {"threshold", "groups", "images_in_groups", "seconds"}


@pytest.mark.django_db
def test_find_duplicates_refuses_a_threshold_out_of_range(tmp_path):
    with pytest.raises(CommandError, match="between 0 and 32"):
        find_duplicates("--threshold", "65")


@pytest.mark.django_db
def test_group_ids_are_kept_when_groups_are_recomputed(tmp_path):
    near_copies(tmp_path, groups=2, copies=2)
    before = dict(Image.objects.values_list("pk", "duplicate_group_id"))

    find_duplicates()

    assert dict(Image.objects.values_list("pk", "duplicate_group_id")) == before


@pytest.mark.django_db
def test_not_duplicates_decision_survives_re_runs(tmp_path, client, curator):
    near_copies(tmp_path, groups=1, copies=2)
    group_id = Image.objects.exclude(duplicate_group=None).first().duplicate_group_id
    client.force_login(curator)

    response = client.post(f"/curation/duplicates/{group_id}/not-duplicates/")
    find_duplicates()
    find_duplicates("--threshold", "10")

    assert response.status_code == 302
    assert NotDuplicateDecision.objects.count() == 1
    assert Image.objects.exclude(duplicate_group=None).count() == 0
    assert AuditEvent.objects.filter(action="duplicates_not_duplicates", actor=curator).count() == 1


@pytest.mark.django_db
def test_keep_one_excludes_the_rest_as_duplicates_and_survives_re_runs(tmp_path, client, curator):
    near_copies(tmp_path, groups=1, copies=3)
    members = list(Image.objects.exclude(duplicate_group=None).order_by("pk"))
    client.force_login(curator)

    client.post(f"/curation/duplicates/{members[0].duplicate_group_id}/keep/", {"keep": members[0].pk})
    find_duplicates()

    statuses = dict(Image.objects.filter(pk__in=[m.pk for m in members]).values_list("pk", "status"))
    assert statuses == {members[0].pk: "pending", members[1].pk: "excluded", members[2].pk: "excluded"}
    assert set(Image.objects.filter(status="excluded").values_list("exclusion_reason", flat=True)) == {"duplicate"}
    events = AuditEvent.objects.filter(action="duplicate_excluded")
    assert events.count() == 2
    assert events.first().before["status"] == "pending" and events.first().after["exclusion_reason"] == "duplicate"
    page = client.get("/curation/duplicates/")
    assert f"group-{members[0].duplicate_group_id}".encode() not in page.content, "a resolved group is no longer open"
    page_all = client.get("/curation/duplicates/?show=all")
    assert f"group-{members[0].duplicate_group_id}".encode() in page_all.content


@pytest.mark.django_db
def test_keep_one_refuses_an_image_outside_the_group(tmp_path, client, curator):
    near_copies(tmp_path, groups=1, copies=2)
    group_id = Image.objects.exclude(duplicate_group=None).first().duplicate_group_id
    outsider = Image.objects.filter(duplicate_group=None).first()
    client.force_login(curator)

    response = client.post(f"/curation/duplicates/{group_id}/keep/", {"keep": outsider.pk}, follow=True)

    assert f"Image {outsider.pk} is not in duplicate group {group_id}" in response.content.decode()
    assert Image.objects.filter(status="excluded").count() == 0


@pytest.mark.django_db
def test_duplicates_page_shows_groups_side_by_side_to_curators_only(tmp_path, client, curator, reviewer):
    near_copies(tmp_path, groups=1, copies=2)
    client.force_login(reviewer)
    assert client.get("/curation/duplicates/").status_code == 403

    client.force_login(curator)
    page = client.get("/curation/duplicates/").content.decode()

    assert page.count("/thumbnail.jpg") == 2
    assert "Eczema" in page and "Melanoma" in page, "the source labels of the members"
    assert "160×120" in page
