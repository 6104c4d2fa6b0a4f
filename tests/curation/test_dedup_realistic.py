"""Near-duplicate groups on atlas-like photos: a shared corner logo, flat skin and caption bars make no
group; re-encoded, resized, recropped, recoloured and re-shared copies are grouped with their original."""

import io
import json
from itertools import combinations

import numpy as np
import pytest
from django.core.management import call_command

from curation.demo_images import KAGGLE_FOLDERS, altered, atlas_photo, jpeg, with_caption, with_logo
from curation.models import DuplicatePair, Image
from tests.samples import write_files

pytestmark = pytest.mark.django_db

COPIES = {  # photo number → the alterations of its one copy
    0: ["reencode", "resize"],
    3: ["recrop"],
    6: ["recolour"],
    9: ["logo_added"],
    12: ["recrop", "reencode"],
    15: ["resize", "recolour"],
}


def atlas(tmp_path, photos: int = 24):
    """`photos` distinct photos, most with the same corner logo, half of them nearly uniform skin,
    a few with a caption bar, and one altered copy of six of them."""
    files, owner = {}, {}
    for number in range(photos):
        original = atlas_photo(number, flat=number % 2 == 1)
        if number % 5 == 4:
            original = with_caption(original, f"Case {number}: left forearm")
        published = with_logo(original) if number % 6 else original
        name = f"{KAGGLE_FOLDERS[number % 11]}/photo{number:02d}.jpg"
        files[name], owner[name] = jpeg(published, 90), number
        if number in COPIES:
            kinds = COPIES[number]
            copy = altered(original if "logo_added" in kinds else published, kinds, np.random.default_rng(number))
            copy_name = f"shared/{KAGGLE_FOLDERS[number % 11]}/copy{number:02d}.jpg"
            files[copy_name], owner[copy_name] = copy, number
    write_files(tmp_path / "atlas", files)
    out = io.StringIO()
    call_command("import_images", str(tmp_path / "atlas"), "--source", "atlas", "--json", stdout=out)
    return json.loads(out.getvalue().splitlines()[-1]), owner


def photo_of(image: Image, owner: dict) -> int:
    return owner[image.provenance.all()[0].source_path]


def test_distinct_photos_sharing_a_logo_flat_skin_or_a_caption_are_never_grouped_and_true_copies_are(tmp_path):
    summary, owner = atlas(tmp_path)

    assert summary["imported"] == 24 + len(COPIES) and summary["rejected"] == []
    groups: dict[int, list[int]] = {}
    for image in Image.objects.exclude(duplicate_group=None).prefetch_related("provenance"):
        groups.setdefault(image.duplicate_group_id, []).append(photo_of(image, owner))
    for members in groups.values():
        assert len(set(members)) == 1, f"distinct photos grouped together: {members}"
    grouped_photos = sorted(members[0] for members in groups.values())
    assert grouped_photos == sorted(COPIES), "every true copy is grouped with its original, nothing else is"
    assert all(len(members) == 2 for members in groups.values())


def test_every_pair_in_a_group_is_verified_and_the_compare_screen_shows_its_distances(tmp_path, client, curator):
    atlas(tmp_path, photos=10)
    client.force_login(curator)

    for group_id in set(Image.objects.exclude(duplicate_group=None).values_list("duplicate_group_id", flat=True)):
        members = sorted(Image.objects.filter(duplicate_group_id=group_id).values_list("pk", flat=True))
        for low, high in combinations(members, 2):
            assert DuplicatePair.objects.filter(image_low_id=low, image_high_id=high, similarity__gte=0.45).exists()
        page = client.get(f"/curation/duplicates/{group_id}/").content.decode()
        assert "pHash bits" in page and "Fingerprint similarity" in page
        assert f"#{members[0]} – #{members[1]}" in page or f"#{members[1]} – #{members[0]}" in page


def test_find_duplicates_again_keeps_the_groups_and_reports_the_largest(tmp_path):
    atlas(tmp_path, photos=10)
    before = set(Image.objects.exclude(duplicate_group=None).values_list("pk", "duplicate_group_id"))

    out = io.StringIO()
    call_command("find_duplicates", "--threshold", "6", "--json", stdout=out)
    result = json.loads(out.getvalue())

    assert result["largest_group"] == 2 and result["checked"] == Image.objects.count()
    assert set(Image.objects.exclude(duplicate_group=None).values_list("pk", "duplicate_group_id")) == before
