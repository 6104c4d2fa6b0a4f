"""The review queue in the production model's orders: least margin first, confident contradictions first, siblings
kept apart, unscored images at random, and nothing of the model in what readers receive."""

import pytest

from curation.models import DuplicateGroup, Image, LabelClass
from labeling.models import ReviewLease
from labeling.services.queue import review_queue_next
from ml.selectors.assist import (
    contradiction,
    margin,
    production_confident_disagreements,
    production_contradiction,
    production_disagreement_counts,
    production_margin,
    production_probabilities,
    production_suggestion,
    ranked,
)
from tests.assisting import ImageScoreFactory, ModelVersionFactory
from tests.reviewing import decide

pytestmark = pytest.mark.django_db

CODES = ["eczema", "melanoma", "melanocytic_nevi"]


def served(reader, count: int) -> list[int]:
    return [lease.image_id for lease in review_queue_next(reader=reader, count=count)]


@pytest.fixture
def production():
    return ModelVersionFactory(codes=CODES, production=True)


def scored(image_factory, version, calibrated, **image_fields):
    image = image_factory(**image_fields)
    ImageScoreFactory(model_version=version, image=image, calibrated=calibrated)
    return image


# --- the ml selector: plain functions and their SQL twins ------------------------------------------------------


def test_margin_is_the_top_probability_minus_the_second():
    assert margin([0.2, 0.5, 0.3]) == pytest.approx(0.2)
    assert margin([0.45, 0.45, 0.1]) == 0
    assert margin([1.0]) == 1.0
    with pytest.raises(ValueError, match="no probabilities"):
        margin([])


def test_ranked_and_contradiction_read_the_outputs_in_the_versions_order():
    assert ranked([0.1, 0.6, 0.3], CODES, top_k=2) == [("melanoma", 0.6), ("melanocytic_nevi", 0.3)]
    assert contradiction([0.1, 0.85, 0.05], CODES, label_code="eczema", min_probability=0.8) == ("melanoma", 0.85)
    assert contradiction([0.1, 0.75, 0.15], CODES, label_code="eczema", min_probability=0.8) is None, "hesitates"
    assert contradiction([0.9, 0.05, 0.05], CODES, label_code="eczema", min_probability=0.8) is None, "agrees"
    assert contradiction([0.05, 0.9, 0.05], CODES, label_code="psoriasis_lichen_planus", min_probability=0.8) is None
    assert contradiction([0.05, 0.9, 0.05], CODES, label_code=None, min_probability=0.8) is None


def test_the_databases_margin_and_contradiction_match_the_plain_functions(image_factory, production):
    rows = [
        ([0.2, 0.5, 0.3], "eczema"),
        ([0.91, 0.05, 0.04], "melanoma"),
        ([0.34, 0.33, 0.33], "melanoma"),
        ([0.05, 0.05, 0.9], "melanocytic_nevi"),
        ([0.1, 0.82, 0.08], "psoriasis_lichen_planus"),  # a class the model does not know
    ]
    images = [scored(image_factory, production, calibrated, source_code=code) for calibrated, code in rows]
    unscored = image_factory(source_code="eczema")
    annotated = Image.objects.annotate(
        margin=production_margin(), contradiction=production_contradiction(min_probability=0.8)
    ).in_bulk()

    for image, (calibrated, code) in zip(images, rows, strict=True):
        assert annotated[image.pk].margin == pytest.approx(margin(calibrated))
        expected = contradiction(calibrated, CODES, label_code=code, min_probability=0.8)
        assert annotated[image.pk].contradiction == (pytest.approx(expected[1]) if expected else None)
    assert annotated[unscored.pk].margin is None and annotated[unscored.pk].contradiction is None
    found = production_confident_disagreements(min_probability=0.8)
    assert [(row["image"].pk, row["label"], row["suggested"]) for row in found] == [
        (images[1].pk, "melanoma", "eczema")
    ]
    assert production_disagreement_counts(min_probability=0.8) == {"melanoma": 1}


def test_the_final_label_is_the_one_contradicted_once_an_image_has_one(image_factory, production):
    melanoma = LabelClass.objects.get(code="melanoma")
    image = scored(image_factory, production, [0.9, 0.05, 0.05], source_code="eczema")
    assert production_disagreement_counts(min_probability=0.8) == {}, "the model agrees with the source"

    Image.objects.filter(pk=image.pk).update(status="labeled", label=melanoma)

    assert production_disagreement_counts(min_probability=0.8) == {"melanoma": 1}
    assert production_confident_disagreements(min_probability=0.8, label_code="eczema") == []


def test_only_the_production_models_scores_count(image_factory, production):
    other = ModelVersionFactory(codes=CODES)
    image = scored(image_factory, other, [0.9, 0.05, 0.05])

    assert production_probabilities([image.pk]) == {}
    assert production_suggestion(image.pk) is None
    ImageScoreFactory(model_version=production, image=image, calibrated=[0.1, 0.3, 0.6])
    assert production_probabilities([image.pk]) == {
        image.pk: [("eczema", 0.1), ("melanoma", 0.3), ("melanocytic_nevi", 0.6)]
    }
    assert production_suggestion(image.pk, top_k=2) == {
        "model_version": production.pk,
        "classes": [("melanocytic_nevi", 0.6), ("melanoma", 0.3)],
    }


def test_without_a_production_model_the_selector_says_nothing(image_factory):
    image = scored(image_factory, ModelVersionFactory(codes=CODES), [0.9, 0.05, 0.05], source_code="melanoma")

    assert production_margin() is None and production_contradiction(min_probability=0.8) is None
    assert production_probabilities([image.pk]) == {} and production_disagreement_counts(min_probability=0.8) == {}


# --- uncertainty ----------------------------------------------------------------------------------------------


def test_uncertainty_serves_the_least_margin_first_and_unscored_images_after(
    settings, reviewer, image_factory, production
):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    sure = scored(image_factory, production, [0.9, 0.05, 0.05])
    torn = scored(image_factory, production, [0.41, 0.40, 0.19])
    middling = scored(image_factory, production, [0.6, 0.3, 0.1])
    unscored = image_factory.create_batch(3)
    by_margin = [torn.pk, middling.pk, sure.pk]

    order = served(reviewer, 6)

    assert order[:3] == by_margin
    assert sorted(order[3:]) == sorted(image.pk for image in unscored)
    expected_random = sorted(unscored, key=lambda image: (image.random_key, image.pk))
    assert order[3:] == [image.pk for image in expected_random], "unscored images come in the random order"


def test_uncertainty_goes_on_in_margin_order_as_the_reader_decides(settings, reviewer, image_factory, production):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    images = [scored(image_factory, production, [0.5 + step / 20, 0.4 - step / 20, 0.1]) for step in (3, 0, 2, 1)]
    seen = []
    for _ in images:
        (image_id,) = served(reviewer, 1)
        seen.append(image_id)
        decide(reader=reviewer, image_id=image_id, label_code="eczema")

    assert seen == [images[1].pk, images[3].pk, images[2].pk, images[0].pk]


def test_a_model_other_than_production_does_not_order_the_queue(settings, reviewer, image_factory):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    candidate = ModelVersionFactory(codes=CODES)
    images = [scored(image_factory, candidate, [0.34 + n / 10, 0.33, 0.33 - n / 10]) for n in range(5)]

    order = served(reviewer, 5)

    assert order == [image.pk for image in sorted(images, key=lambda image: (image.random_key, image.pk))]


def test_uncertainty_keeps_duplicates_and_lesion_and_patient_siblings_apart(
    settings, reviewer, image_factory, production
):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    group = DuplicateGroup.objects.create()
    copy_a = scored(image_factory, production, [0.40, 0.39, 0.21], duplicate_group=group)
    copy_b = scored(image_factory, production, [0.40, 0.38, 0.22], duplicate_group=group)
    lesion_a = scored(image_factory, production, [0.40, 0.37, 0.23], metadata={"lesion_id": "HAM_0001"})
    lesion_b = scored(image_factory, production, [0.40, 0.36, 0.24], metadata={"lesion_id": "HAM_0001"})
    patient_a = scored(image_factory, production, [0.40, 0.35, 0.25], metadata={"patient_id": "P7"})
    patient_b = scored(image_factory, production, [0.40, 0.34, 0.26], metadata={"patient_id": "P7"})
    alone = scored(image_factory, production, [0.60, 0.30, 0.10])

    order = served(reviewer, 7)

    assert order[:3] == [copy_a.pk, lesion_a.pk, patient_a.pk], "one of each group first"
    assert order[3] == alone.pk, "an unrelated image before a second sibling"
    assert order[4:] == [copy_b.pk, lesion_b.pk, patient_b.pk], "siblings still come, once nothing else is left"


def test_a_sibling_of_an_image_the_reader_just_decided_waits(settings, reviewer, image_factory, production):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    first = scored(image_factory, production, [0.40, 0.39, 0.21], metadata={"lesion_id": "L1"})
    sibling = scored(image_factory, production, [0.40, 0.38, 0.22], metadata={"lesion_id": "L1"})
    other = scored(image_factory, production, [0.70, 0.20, 0.10])

    assert served(reviewer, 1) == [first.pk]
    decide(reader=reviewer, image_id=first.pk, label_code="eczema")

    assert served(reviewer, 1) == [other.pk], "the decided image's sibling is held back"
    decide(reader=reviewer, image_id=other.pk, label_code="eczema")
    assert served(reviewer, 1) == [sibling.pk]


def test_the_diversity_window_is_a_setting(settings, reviewer, image_factory, production):
    settings.DERMCURATE_QUEUE_ORDER = "uncertainty"
    settings.DERMCURATE_QUEUE_DIVERSITY_WINDOW = 0
    first = scored(image_factory, production, [0.40, 0.39, 0.21], metadata={"lesion_id": "L1"})
    sibling = scored(image_factory, production, [0.40, 0.38, 0.22], metadata={"lesion_id": "L1"})
    scored(image_factory, production, [0.70, 0.20, 0.10])
    decide(reader=reviewer, image_id=first.pk, label_code="eczema")

    assert served(reviewer, 1) == [sibling.pk], "with no window, only one request's images are kept apart"


# --- disagreement ---------------------------------------------------------------------------------------------


def test_disagreement_serves_confident_contradictions_of_the_source_label_first(
    settings, reviewer, image_factory, production
):
    settings.DERMCURATE_QUEUE_ORDER = "disagreement"
    agreeing = scored(image_factory, production, [0.95, 0.03, 0.02], source_code="eczema")
    hesitant = scored(image_factory, production, [0.15, 0.75, 0.10], source_code="eczema")
    strong = scored(image_factory, production, [0.02, 0.96, 0.02], source_code="eczema")
    clear = scored(image_factory, production, [0.05, 0.10, 0.85], source_code="melanoma")
    unknown_class = scored(image_factory, production, [0.01, 0.98, 0.01], source_code="psoriasis_lichen_planus")
    no_source = scored(image_factory, production, [0.01, 0.98, 0.01])
    unscored = image_factory(source_code="melanoma")
    rest = [agreeing, hesitant, unknown_class, no_source, unscored]

    order = served(reviewer, 7)

    assert order[:2] == [strong.pk, clear.pk], "most confident contradiction first"
    assert order[2:] == [image.pk for image in sorted(rest, key=lambda image: (image.random_key, image.pk))]


def test_the_disagreement_threshold_is_a_setting(settings, reviewer, image_factory, production):
    settings.DERMCURATE_QUEUE_ORDER = "disagreement"
    settings.DERMCURATE_DISAGREEMENT_MIN_PROBABILITY = 0.7
    others = image_factory.create_batch(4, source_code="eczema")
    hesitant = scored(image_factory, production, [0.15, 0.75, 0.10], source_code="eczema")

    assert served(reviewer, 5)[0] == hesitant.pk
    assert len(others) == 4


def test_model_orders_fall_back_to_random_without_a_production_model(settings, reviewer, image_factory):
    images = image_factory.create_batch(6, source_code="eczema")
    in_random_order = [image.pk for image in sorted(images, key=lambda image: (image.random_key, image.pk))]
    for order in ("uncertainty", "disagreement"):
        settings.DERMCURATE_QUEUE_ORDER = order
        ReviewLease.objects.all().delete()

        assert served(reviewer, 6) == in_random_order


# --- blind ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["uncertainty", "disagreement"])
def test_readers_receive_nothing_of_the_model_with_a_model_order(
    settings, api, client, reviewer, image_factory, production, order
):
    settings.DERMCURATE_QUEUE_ORDER = "random"
    image_factory(source_code="eczema")
    plain = api(reviewer).get("/api/v1/review-queue/next/?count=1").json()
    ReviewLease.objects.all().delete()
    settings.DERMCURATE_QUEUE_ORDER = order
    scored(image_factory, production, [0.123456, 0.876544, 0.0], source_code="eczema")

    response = api(reviewer).get("/api/v1/review-queue/next/?count=5")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(plain) and {key for item in body["items"] for key in item} == set(plain["items"][0])
    text = response.content.decode()
    assert "0.87" not in text and "0.12" not in text and "margin" not in text and "queue_rank" not in text
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert "0.87" not in page and "probab" not in page.lower()


def test_an_unknown_queue_order_stops_the_settings(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT, subprocess_env

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT,
        env={**subprocess_env(), "DERMCURATE_QUEUE_ORDER": "smallest-first"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DERMCURATE_QUEUE_ORDER='smallest-first' is not known" in result.stderr


def test_labeling_reads_the_model_only_through_the_assist_selector():
    from tests.core.test_layers import imported_modules, python_files

    reached = {
        module
        for path in python_files("labeling")
        for module in imported_modules(path)
        if module == "ml" or module.startswith("ml.")
    }
    assert reached <= {"ml.selectors.assist"}
