"""Training and model pages and API: bad input is a 400 with a message naming the field, never a 500."""

import pytest

from accounts.roles import Role
from curation.models import LabelClass
from curation.services.snapshots import snapshot_create
from ml.models import ModelVersion, TrainingRun
from tests.conftest import make_user
from tests.ml.test_models_api import model_version

pytestmark = pytest.mark.django_db

HUGE_ID = "9" * 30


@pytest.fixture
def snapshot(image_factory):
    for code in ("eczema", "melanoma"):
        image_factory.create_batch(10, status="labeled", label=LabelClass.objects.get(code=code))
    return snapshot_create(name="s", ratios=[0.6, 0.2, 0.2])


def page_text(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a=x&b=1", "Compare: &#x27;x&#x27; is not the id of any model version."),
        ("a=1", "With: This field is required."),
        (f"a={HUGE_ID}&b=1", "is not the id of any model version"),
        ("a=424242&b=1", "Compare: There is no model version 424242."),
        ("", "Compare: This field is required."),
    ],
)
def test_compare_refuses_bad_model_ids_with_400_on_the_models_page(client, curator, snapshot, query, message):
    first = model_version(snapshot, 0.5)
    client.force_login(curator)

    response = client.get(f"/ml/models/compare/?{query.replace('b=1', f'b={first.pk}')}")

    assert response.status_code == 400
    assert message in page_text(response)
    assert f"/ml/models/{first.pk}/" in page_text(response), "the models page is shown again"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"snapshot": "abc"}, "Snapshot: &#x27;abc&#x27; is not the id of any snapshot."),
        ({"snapshot": HUGE_ID}, "is not the id of any snapshot"),
        ({"snapshot": "424242"}, "Snapshot: There is no snapshot 424242."),
        ({"snapshot": ""}, "Snapshot: This field is required."),
        ({"config": "[1]"}, "Config overrides: must be a JSON object"),
        ({"config": "{"}, "Config overrides: not valid JSON"),
        ({"config": '{"seed": NaN}'}, "Config overrides: not valid JSON"),
        ({"config": "1" * 5000}, "Config overrides: not valid JSON"),
        ({"config": "[" * 9000 + "]" * 9000}, "Ensure this value has at most 10000 characters"),
        ({"config": "[" * 4000 + "]" * 4000}, "Config overrides: not valid JSON (maximum recursion depth"),
        ({"config": '{"backbone": "B9"}'}, "backbone=&#x27;B9&#x27; is not allowed"),
        ({"config": '{"image_size": "big"}'}, "image_size must be of type int"),
        ({"preset": "huge"}, "Preset: Select a valid choice."),
    ],
)
def test_the_training_form_refuses_bad_input_with_400_naming_the_field(client, curator, snapshot, form, message):
    client.force_login(curator)
    response = client.post("/ml/runs/", {"snapshot": str(snapshot.pk), "preset": "tiny", **form})

    assert response.status_code == 400
    assert message in page_text(response)
    assert TrainingRun.objects.count() == 0


def test_the_training_form_never_sends_the_browser_off_site(client, curator, snapshot):
    client.force_login(curator)

    refused = client.post("/ml/runs/", {"snapshot": "abc", "back": "https://evil.example/"})
    queued = client.post("/ml/runs/", {"snapshot": snapshot.pk, "preset": "tiny", "back": "https://evil.example/"})

    assert refused.status_code == 400
    assert queued.status_code == 302
    assert queued["Location"] == f"/ml/runs/{TrainingRun.objects.get().pk}/"


def test_a_refused_training_form_keeps_what_was_typed(client, curator, snapshot):
    client.force_login(curator)

    response = client.post("/ml/runs/", {"snapshot": snapshot.pk, "preset": "tiny", "config": '{"backbone": "B9"}'})

    assert 'value="{&quot;backbone&quot;: &quot;B9&quot;}"' in page_text(response)
    assert f'value="{snapshot.pk}" selected' in page_text(response)


def test_promotion_refused_by_the_service_is_a_400_on_the_model_page(client, curator, snapshot):
    ModelVersion.objects.filter(pk=model_version(snapshot, 0.8).pk).update(is_production=True)
    weaker = model_version(snapshot, 0.5)
    client.force_login(curator)

    response = client.post(f"/ml/models/{weaker.pk}/promote/")

    assert response.status_code == 400
    assert "macro F1" in page_text(response)
    weaker.refresh_from_db()
    assert not weaker.is_production


def test_a_model_file_missing_from_storage_is_a_404(client, curator, snapshot):
    version = model_version(snapshot, 0.5)
    version.curves_plot = "models/gone/curves.png"
    version.save(update_fields=["curves_plot"])
    client.force_login(curator)

    assert client.get(f"/ml/models/{version.pk}/files/curves.png").status_code == 404
    assert client.get(f"/ml/models/{version.pk}/files/nothing.bin").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"snapshot": "abc"}, "snapshot", "Must be a whole number."),
        ({"snapshot": "6"}, "snapshot", "Must be a whole number."),
        ({"snapshot": int(HUGE_ID)}, "snapshot", "less than or equal to"),
        ({"snapshot": 424242}, "snapshot", "There is no snapshot 424242."),
        ({"config": [1]}, "config", 'Expected a dictionary of items but got type "list".'),
        ({"config": "{"}, "config", "Expected a dictionary"),
        ({"preset": "huge"}, "preset", "Unknown preset 'huge'. Known: seed, b5, tiny."),
    ],
)
def test_the_training_api_refuses_bad_input_with_400_naming_the_field(api, curator, snapshot, payload, field, message):
    response = api(curator).post("/api/v1/training-runs/", {"snapshot": snapshot.pk, **payload}, format="json")

    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert TrainingRun.objects.count() == 0


def test_promote_takes_force_as_a_json_boolean_only(api, curator, snapshot):
    version = model_version(snapshot, 0.5)

    response = api(curator).post(f"/api/v1/models/{version.pk}/promote/", {"force": 0})

    assert response.status_code == 400
    assert response.json() == {"force": ["Must be true or false."]}
    version.refresh_from_db()
    assert not version.is_production


def test_the_token_api_refuses_overlong_credentials(api):
    make_user("dr.long", Role.REVIEWER)

    response = api(None).post("/api/v1/auth/token/", {"username": "u" * 151, "password": "p" * 5000}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}
