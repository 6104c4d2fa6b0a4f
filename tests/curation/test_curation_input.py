"""What callers send never ends in a 500: pages answer 400 with a message naming the field, the API
400 with the field's name as the key, the command line a clear error; nothing is stored."""

import io
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.models import DuplicateGroup, ImportBatch, LabelClass, Snapshot, Source
from curation.services.imports import import_batch_create
from tests.samples import lesion_jpeg, write_files

pytestmark = pytest.mark.django_db

FOURTEEN_DIGITS = "12345678901234"
HUGE_ID = "9" * 30


@pytest.fixture
def group(image_factory):
    group = DuplicateGroup.objects.create()
    image_factory.create_batch(2, duplicate_group=group)
    return group


@pytest.fixture
def labeled_images(image_factory):
    for code in ("eczema", "melanoma"):
        image_factory.create_batch(5, status="labeled", label=LabelClass.objects.get(code=code))


def page_text(response) -> str:
    return response.content.decode()


# --- duplicates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "field", "value", "message"),
    [
        ("not-duplicates", "image", "abc", "Image: &#x27;abc&#x27; is not the id of any image."),
        ("not-duplicates", "image", HUGE_ID, "is not the id of any image"),
        ("not-duplicates", "image", "424242", "Image: There is no image 424242."),
        ("keep", "keep", "abc", "Image to keep: &#x27;abc&#x27; is not the id of any image."),
        ("keep", "keep", "-5", "Image to keep: &#x27;-5&#x27; is not the id of any image."),
        ("keep", "keep", "", "Image to keep: This field is required."),
    ],
)
def test_duplicate_decisions_refuse_a_bad_image_id_with_400_and_the_field(
    client, curator, group, action, field, value, message
):
    client.force_login(curator)

    response = client.post(f"/curation/duplicates/{group.pk}/{action}/", {field: value})

    assert response.status_code == 400
    assert message in page_text(response)
    assert f"group-{group.pk}" in page_text(response), "the duplicates page is shown again"
    assert group.images.filter(status="excluded").count() == 0


def test_a_duplicate_decision_refused_by_the_service_is_a_400_on_the_page_it_came_from(
    client, curator, group, image_factory
):
    outsider = image_factory()
    client.force_login(curator)

    response = client.post(
        f"/curation/duplicates/{group.pk}/keep/", {"keep": outsider.pk, "next": "/curation/duplicates/?show=all"}
    )

    assert response.status_code == 400
    assert f"Image {outsider.pk} is not in duplicate group {group.pk}" in page_text(response)
    assert response.context["show"] == "all", "the page it came from, with its filters"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_a_duplicate_decision_returns_only_to_this_site(client, curator, group, target):
    client.force_login(curator)

    response = client.post(f"/curation/duplicates/{group.pk}/not-duplicates/", {"next": target})

    assert response.status_code == 302
    assert response["Location"] == "/curation/duplicates/"


def test_a_duplicate_decision_returns_to_its_page_on_this_site(client, curator, group):
    client.force_login(curator)

    response = client.post(f"/curation/duplicates/{group.pk}/not-duplicates/", {"next": "/curation/duplicates/?page=2"})

    assert response["Location"] == "/curation/duplicates/?page=2"


def test_duplicates_and_images_pages_refuse_unknown_filters(client, curator, group):
    client.force_login(curator)

    duplicates = client.get("/curation/duplicates/?show=everything&page=abc")
    images = client.get(f"/curation/?status=bogus&label=rosacea&source={'s' * 101}&conflicts=maybe")
    fine = client.get("/curation/?status=pending&conflicts=1&page=999")

    assert duplicates.status_code == 400 and "Show: Select a valid choice." in page_text(duplicates)
    assert images.status_code == 400
    for field in ("Status:", "Class:", "Source:", "Source labels:"):
        assert field in page_text(images)
    assert fine.status_code == 200, "an out-of-range page shows the last page, as Django's paginator does"


# --- snapshots -------------------------------------------------------------------------------------------------

GOOD_SNAPSHOT = {"name": "s1", "ratio_train": "0.6", "ratio_val": "0.2", "ratio_test": "0.2", "seed": "1"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": FOURTEEN_DIGITS}, "Seed: Ensure this value is less than or equal to 2147483647."),
        ({"seed": "-" + FOURTEEN_DIGITS}, "Seed: Ensure this value is greater than or equal to -2147483648."),
        ({"seed": "one"}, "Seed: Enter a whole number."),
        ({"cap_per_class": FOURTEEN_DIGITS}, "Cap per class: Ensure this value is less than or equal to 2147483647."),
        ({"cap_per_class": "0"}, "Cap per class: Ensure this value is greater than or equal to 1."),
        ({"name": "n" * 300}, "Name: Ensure this value has at most 200 characters (it has 300)."),
        ({"name": ""}, "Name: This field is required."),
        ({"ratio_val": "abc"}, "Val ratio: Enter a number."),
        ({"ratio_val": "nan"}, "Val ratio: Enter a number."),
        ({"ratio_test": "2"}, "Test ratio: Ensure this value is less than or equal to 1."),
        ({"classes": ["rosacea"]}, "Classes: Select a valid choice. rosacea is not one of the available choices."),
        ({"ratio_val": "0.5"}, "sum to 1"),
    ],
)
def test_the_snapshot_form_refuses_bad_input_with_400_naming_the_field(
    client, curator, labeled_images, changes, message
):
    client.force_login(curator)

    response = client.post("/snapshots/", {**GOOD_SNAPSHOT, **changes})

    assert response.status_code == 400
    assert message in page_text(response)
    assert Snapshot.objects.count() == 0


def test_a_refused_snapshot_form_keeps_what_was_typed(client, curator, labeled_images):
    client.force_login(curator)

    response = client.post("/snapshots/", {**GOOD_SNAPSHOT, "name": "keep-me", "seed": FOURTEEN_DIGITS})

    assert 'value="keep-me"' in page_text(response)
    assert f'value="{FOURTEEN_DIGITS}"' in page_text(response)


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"seed": int(FOURTEEN_DIGITS)}, "seed", "less than or equal to 2147483647"),
        ({"cap_per_class": int(FOURTEEN_DIGITS)}, "cap_per_class", "less than or equal to 2147483647"),
        ({"cap_per_class": 0}, "cap_per_class", "greater than or equal to 1"),
        ({"name": "n" * 300}, "name", "no more than 200 characters"),
        ({"ratios": [0.5, 0.5]}, "ratios", "at least 3 elements"),
        ({"ratios": ["a", 0.5, 0.5]}, "ratios", "Item 0: must be a number."),
        ({"ratios": ["0.5", 0.25, 0.25]}, "ratios", "Item 0: must be a number."),
        ({"ratios": "0.8"}, "ratios", "Expected a list"),
        ({"classes": ["rosacea"]}, "classes", "Unknown class code 'rosacea'. Known: normal_skin, eczema"),
        ({"classes": {"a": 1}}, "classes", "Expected a list"),
        ({"seed": "x"}, "seed", "Must be a whole number."),
        ({"seed": "7"}, "seed", "Must be a whole number."),
        ({"seed": True}, "seed", "Must be a whole number."),
        ({"name": 7}, "name", "Must be a string."),
    ],
)
def test_the_snapshot_api_refuses_bad_input_with_400_naming_the_field(
    api, curator, labeled_images, payload, field, message
):
    response = api(curator).post("/api/v1/snapshots/", {"name": "s1", **payload}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert message in str(response.json()[field])
    assert Snapshot.objects.count() == 0


def test_the_api_answers_bad_json_with_400(api, curator):
    client = api(curator)

    broken = client.post("/api/v1/snapshots/", "{", content_type="application/json")
    deep = client.post("/api/v1/snapshots/", "[" * 100_000 + "]" * 100_000, content_type="application/json")
    not_an_object = client.post("/api/v1/snapshots/", "[1]", content_type="application/json")

    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]
    assert deep.status_code == 400 and "JSON parse error" in deep.json()["detail"]
    assert not_an_object.status_code == 400 and "non_field_errors" in not_an_object.json()


def test_the_create_snapshot_command_refuses_a_seed_the_database_cannot_hold(labeled_images):
    with pytest.raises(CommandError, match="seed must lie between"):
        call_command("create_snapshot", "s1", "--seed", FOURTEEN_DIGITS)

    assert Snapshot.objects.count() == 0


# --- import source names ---------------------------------------------------------------------------------------


def small_zip() -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("1. Eczema 1677/a.jpg", lesion_jpeg(1))
    buffer.seek(0)
    buffer.name = "set.zip"
    return buffer


def test_the_imports_api_refuses_a_source_name_over_100_characters(api, curator):
    response = api(curator).post("/api/v1/imports/", {"file": small_zip(), "source": "s" * 101}, format="multipart")

    assert response.status_code == 400
    assert "no more than 100 characters" in response.json()["source"][0]
    assert ImportBatch.objects.count() == 0 and Source.objects.count() == 0


def test_the_import_command_refuses_a_source_name_over_100_characters(tmp_path):
    write_files(tmp_path / "set", {"1. Eczema 1677/a.jpg": lesion_jpeg(1)})

    with pytest.raises(CommandError, match="The source name has 101 characters; at most 100 are allowed"):
        call_command("import_images", str(tmp_path / "set"), "--source", "s" * 101)

    assert ImportBatch.objects.count() == 0 and Source.objects.count() == 0


def test_the_import_service_checks_the_source_name_length():
    with pytest.raises(ValidationError, match="at most 100"):
        import_batch_create(source_name="s" * 101)

    assert import_batch_create(source_name="s" * 100).source.name == "s" * 100
