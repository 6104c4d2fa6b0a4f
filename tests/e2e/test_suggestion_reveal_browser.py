"""Blind, then reveal, in a real browser: nothing of the model before the decision, its top 3 for a moment after,
then the next image; undo during the reveal is kept as a change after the suggestion."""

import io

import pytest
from django.core.management import call_command

from curation.demo_images import write_demo_dataset
from curation.models import Image
from labeling.models import SuggestionReveal
from tests.assisting import ImageScoreFactory, ModelVersionFactory
from tests.conftest import make_user
from tests.e2e.conftest import sign_in
from tests.e2e.test_review_ui import current_image, wait_for_next

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scored_images(tmp_path, settings):
    settings.DERMCURATE_REVEAL_MODEL_SUGGESTION = True
    settings.DERMCURATE_REVEAL_MODEL_SUGGESTION_SECONDS = 1.5
    write_demo_dataset(tmp_path / "set", per_class=1, size=(320, 240), classes=[1, 2, 5])
    call_command("import_images", str(tmp_path / "set"), "--source", "demo", stdout=io.StringIO())
    version = ModelVersionFactory(codes=["eczema", "melanoma", "melanocytic_nevi"], production=True)
    images = list(Image.objects.order_by("pk"))
    for image in images:
        ImageScoreFactory(model_version=version, image=image, calibrated=[0.2, 0.7, 0.1])
    return images


def test_the_models_top_3_shows_after_the_decision_then_the_next_image(page, live_server, scored_images):
    make_user("dr.eva", "reviewer")
    sign_in(page, live_server, "dr.eva")
    page.goto(f"{live_server.url}/review/")
    first = current_image(page)
    assert page.is_hidden("#suggestion")
    assert "70 %" not in page.content() and page.inner_text("#suggestion-classes") == ""

    page.keyboard.press("1")  # eczema
    page.wait_for_selector("#suggestion:not([hidden])")

    assert page.get_attribute("#review", "data-state") == "suggestion"
    assert page.get_attribute("#review", "data-current") == str(first), "the decided image stays behind it"
    rows = page.locator("#suggestion-classes li").all_inner_texts()
    assert rows == ["Melanoma 70 %", "Eczema 20 % (your decision)", "Melanocytic nevi (NV) 10 %"]
    page.keyboard.press("2")  # a decision key while it shows decides nothing
    wait_for_next(page, first)  # it goes by itself
    second = current_image(page)
    assert page.is_hidden("#suggestion") and second != first
    assert SuggestionReveal.objects.get().review.label.code == "eczema"


def test_undo_while_the_suggestion_shows_brings_the_image_back_and_the_change_is_kept(page, live_server, scored_images):
    make_user("dr.finn", "reviewer")
    sign_in(page, live_server, "dr.finn")
    page.goto(f"{live_server.url}/review/")
    first = current_image(page)

    page.keyboard.press("1")
    page.wait_for_selector("#suggestion:not([hidden])")
    page.keyboard.press("Z")
    page.wait_for_function(
        "id => (r => r.dataset.current === id && r.dataset.state === 'ready')(document.getElementById('review'))",
        arg=str(first),
    )
    page.keyboard.press("2")  # melanoma, the model's class
    page.wait_for_selector("#suggestion:not([hidden])")
    page.keyboard.press("Enter")  # go on at once
    wait_for_next(page, first)

    reveals = list(SuggestionReveal.objects.order_by("pk"))
    assert [r.review.label.code for r in reveals] == ["eczema", "melanoma"]
    assert (reveals[0].label_changed, reveals[0].changed_to_suggestion) == (True, True)
    assert reveals[0].revised_by_id == reveals[1].review_id
