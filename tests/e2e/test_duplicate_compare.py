"""A curator decides duplicate groups on the compare screen by keys alone."""

import io

import numpy as np
import pytest
from django.core.management import call_command

from curation.demo_images import KAGGLE_FOLDERS, altered, atlas_photo, jpeg, with_logo
from curation.models import DuplicateGroup, Image, NotDuplicateDecision
from tests.conftest import make_user
from tests.e2e.conftest import sign_in
from tests.samples import write_files

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def three_groups(tmp_path):
    files = {}
    for number in range(3):
        published = with_logo(atlas_photo(number, flat=False))
        files[f"{KAGGLE_FOLDERS[1]}/photo{number}.jpg"] = jpeg(published)
        files[f"shared/{KAGGLE_FOLDERS[1]}/copy{number}.jpg"] = altered(
            published, ["resize", "reencode"], np.random.default_rng(number)
        )
    write_files(tmp_path / "set", files)
    call_command("import_images", str(tmp_path / "set"), "--source", "atlas", stdout=io.StringIO())
    groups = list(DuplicateGroup.objects.order_by("pk"))
    assert len(groups) == 3
    return groups


def current_group(page) -> int:
    page.wait_for_function(
        "() => document.getElementById('compare') && document.getElementById('compare').dataset.state === 'ready'"
    )
    return int(page.get_attribute("#compare", "data-group"))


def test_same_photo_not_the_same_and_next_group_by_keys(page, live_server, three_groups):
    make_user("curator.kim", "curator")
    sign_in(page, live_server, "curator.kim")
    first, second, third = three_groups
    page.goto(f"{live_server.url}/curation/duplicates/{first.pk}/")
    assert current_group(page) == first.pk
    assert page.locator(".compare-image").count() == 2 and page.locator("#pairs tbody tr").count() == 1

    smaller = page.locator(".compare-image").nth(1)
    keep = int(smaller.get_attribute("data-image"))
    page.keyboard.press("2")  # keep the second image shown
    assert page.get_attribute("#compare", "data-keep") == str(keep)
    page.keyboard.press("S")  # same photo
    page.wait_for_function("id => document.getElementById('compare').dataset.group === id", arg=str(second.pk))
    members = list(Image.objects.filter(duplicate_group=first).order_by("pk"))
    assert {(m.pk == keep, m.status) for m in members} == {(True, "pending"), (False, "excluded")}

    assert current_group(page) == second.pk
    page.keyboard.press("D")  # not the same
    page.wait_for_function("id => document.getElementById('compare').dataset.group === id", arg=str(third.pk))
    assert NotDuplicateDecision.objects.count() == 1
    assert not DuplicateGroup.objects.filter(pk=second.pk).exists(), "its pair no longer groups"

    assert current_group(page) == third.pk
    page.keyboard.press("N")  # next group: none is open any more, so back to the list
    page.wait_for_url(lambda url: f"/duplicates/{third.pk}/" not in url)
    assert Image.objects.filter(duplicate_group=third, status="excluded").count() == 0, "N decides nothing"
