"""Blind, then reveal: the model's top 3 only after the reader's own decision, only with the setting on; what the
reader does next is kept; the agreement page compares readers with the model per class."""

import pytest

from core.models import AuditEvent
from labeling.models import SuggestionReveal
from labeling.services.reviews import review_undo
from tests.assisting import ImageScoreFactory, ModelVersionFactory
from tests.reviewing import decide, give

pytestmark = pytest.mark.django_db

CODES = ["eczema", "melanoma", "melanocytic_nevi", "psoriasis_lichen_planus"]
SUGGEST = "/api/v1/reviews/suggestion/"


@pytest.fixture
def reveal_on(settings):
    settings.DERMCURATE_REVEAL_MODEL_SUGGESTION = True


@pytest.fixture
def image(image_factory):
    version = ModelVersionFactory(codes=CODES, production=True)
    image = image_factory(source_code="eczema")
    ImageScoreFactory(model_version=version, image=image, calibrated=[0.1, 0.6, 0.25, 0.05])
    return image


def test_the_suggestion_comes_only_after_my_decision(api, reviewer, image, reveal_on):
    give(reviewer, image)
    before = api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")
    assert (before.status_code, before.json()["code"]) == (409, "not_decided"), "holding it is not deciding it"
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")

    after = api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")

    assert after.status_code == 200
    body = after.json()
    assert [(row["code"], row["name"]) for row in body["classes"]] == [
        ("melanoma", "Melanoma"),
        ("melanocytic_nevi", "Melanocytic nevi (NV)"),
        ("eczema", "Eczema"),
    ]
    assert [row["probability"] for row in body["classes"]] == pytest.approx([0.6, 0.25, 0.1])
    assert body["agreed"] is False
    reveal = SuggestionReveal.objects.get()
    assert (reveal.review.image_id, reveal.top_code, reveal.agreed) == (image.pk, "melanoma", False)
    assert AuditEvent.objects.filter(action="suggestion_revealed", image_id=image.pk).count() == 1
    again = api(reviewer).post(SUGGEST, {"image": image.pk}, format="json").json()
    assert again == body and SuggestionReveal.objects.count() == 1, "asking again shows what was shown"


def test_another_readers_decision_does_not_unlock_mine(api, reviewer, reviewer2, image, reveal_on):
    decide(reader=reviewer, image_id=image.pk, label_code="melanoma")

    response = api(reviewer2).post(SUGGEST, {"image": image.pk}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "not_decided")


def test_with_the_setting_off_nobody_sees_the_suggestion(api, reviewer, image):
    decide(reader=reviewer, image_id=image.pk, label_code="melanoma")

    response = api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")

    assert response.status_code == 403
    assert SuggestionReveal.objects.count() == 0


def test_the_suggestion_endpoint_is_for_readers_and_checks_its_input(api, curator, reviewer, image, reveal_on):
    assert api(curator).post(SUGGEST, {"image": image.pk}, format="json").status_code == 403
    assert api(None).post(SUGGEST, {"image": image.pk}, format="json").status_code == 401
    bad = api(reviewer).post(SUGGEST, {"image": "first"}, format="json")
    assert bad.status_code == 400 and "image" in bad.json()
    huge = api(reviewer).post(SUGGEST, {"image": 2**70}, format="json")
    assert huge.status_code == 400 and "image" in huge.json()


def test_an_image_the_model_did_not_score_has_no_suggestion(api, reviewer, image_factory, image, reveal_on):
    unscored = image_factory()
    decide(reader=reviewer, image_id=unscored.pk, label_code="eczema")

    body = api(reviewer).post(SUGGEST, {"image": unscored.pk}, format="json").json()

    assert body == {"image": unscored.pk, "model_version": None, "classes": [], "agreed": None}
    assert SuggestionReveal.objects.count() == 0


def test_nothing_of_the_model_reaches_the_reader_before_deciding(api, client, reviewer, image, reveal_on):
    queue = api(reviewer).get("/api/v1/review-queue/next/?count=3")
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()

    assert [item["image"] for item in queue.json()["items"]] == [image.pk]
    for text in (queue.content.decode(), page):
        assert "0.6" not in text and "probability" not in text
    assert 'data-suggestion-url="/api/v1/reviews/suggestion/"' in page
    assert 'id="suggestion-classes"></ol>' in page, "the box is empty until a decision"


def test_the_page_has_no_suggestion_hook_with_the_setting_off(client, reviewer, image):
    client.force_login(reviewer)

    assert "data-suggestion-url" not in client.get("/review/").content.decode()


def test_undo_after_the_suggestion_and_another_class_is_kept_as_a_change_to_the_model(api, reviewer, image, reveal_on):
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")
    review_undo(reader=reviewer)

    api(reviewer).post("/api/v1/reviews/", {"image": image.pk, "label": "melanoma"}, format="json")

    reveal = SuggestionReveal.objects.get()
    assert reveal.review.retracted_at is not None
    assert reveal.revised_by.label.code == "melanoma"
    assert (reveal.label_changed, reveal.changed_to_suggestion) == (True, True)


def test_undo_then_the_same_class_again_is_no_change(api, reviewer, image, reveal_on):
    decide(reader=reviewer, image_id=image.pk, label_code="psoriasis_lichen_planus")
    api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")
    review_undo(reader=reviewer)

    api(reviewer).post("/api/v1/reviews/", {"image": image.pk, "label": "psoriasis_lichen_planus"}, format="json")

    reveal = SuggestionReveal.objects.get()
    assert (reveal.label_changed, reveal.changed_to_suggestion) == (False, False)


def test_a_change_from_history_after_the_suggestion_is_kept(api, reviewer, image, reveal_on):
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")

    changed = api(reviewer).post(
        "/api/v1/reviews/change/", {"image": image.pk, "label": "melanocytic_nevi"}, format="json"
    )

    assert changed.status_code == 200
    reveal = SuggestionReveal.objects.get()
    assert reveal.revised_by_id == changed.json()["id"]
    assert (reveal.label_changed, reveal.changed_to_suggestion) == (True, False), "not the model's top class"


def test_a_reveal_without_a_later_decision_stays_open(reviewer, image, reveal_on, api):
    other = decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    api(reviewer).post(SUGGEST, {"image": image.pk}, format="json")

    assert SuggestionReveal.objects.get().revised_by is None
    assert other.suggestion_reveal.label_changed is None


def test_the_agreement_page_compares_readers_and_the_model_per_class(
    client, api, curator, reviewer, reviewer2, image_factory, reveal_on
):
    version = ModelVersionFactory(codes=CODES, production=True)
    says_melanoma = [image_factory() for _ in range(3)]
    for image in says_melanoma:
        ImageScoreFactory(model_version=version, image=image, calibrated=[0.1, 0.7, 0.1, 0.1])
    unscored = image_factory()
    decide(reader=reviewer, image_id=says_melanoma[0].pk, label_code="melanoma")
    decide(reader=reviewer, image_id=says_melanoma[1].pk, label_code="melanoma")
    decide(reader=reviewer2, image_id=says_melanoma[0].pk, label_code="eczema")
    decide(reader=reviewer2, image_id=says_melanoma[2].pk, label_code="melanoma")
    decide(reader=reviewer2, image_id=unscored.pk, label_code="eczema")
    api(reviewer2).post(SUGGEST, {"image": says_melanoma[0].pk}, format="json")
    client.force_login(curator)

    response = client.get("/curation/agreement/")

    assert response.status_code == 200
    model = response.context["model"]
    assert (model.model_version, model.reads, model.agreed) == (version.pk, 4, 3)
    rows = {row["code"]: row for row in model.per_class}
    assert (rows["melanoma"]["reader_said"], rows["melanoma"]["model_agreed"]) == (3, 1.0)
    assert (rows["melanoma"]["model_said"], rows["melanoma"]["reader_agreed"]) == (4, 0.75)
    assert (rows["eczema"]["reader_said"], rows["eczema"]["model_agreed"]) == (1, 0.0)
    assert model.reveals["shown"] == 1 and model.reveals["agreed"] == 0
    html = response.content.decode()
    assert "3 of 4 agree (75 %)" in html and 'id="reader-model-table"' in html
