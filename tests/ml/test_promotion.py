"""Promotion rules, each refusal with its message; compare on the same images. Scores are written directly."""

import pytest

from core.models import AuditEvent
from curation.models import LabelClass
from curation.selectors.snapshots import snapshot_test_labels
from curation.services.snapshots import snapshot_create
from ml.models import ModelVersion, TrainingRun
from ml.services.evaluations import image_scores_store, judged_labels, metrics_on

pytestmark = pytest.mark.django_db

CLASSES = ["eczema", "melanoma"]


@pytest.fixture
def snapshot(image_factory):
    for code in CLASSES:
        image_factory.create_batch(12, status="labeled", label=LabelClass.objects.get(code=code))
    return snapshot_create(name="s", ratios=[0.5, 0.0, 0.5])  # 6 test images per class


def scored_version(snapshot, *, wrong: int, scored_images: int | None = None) -> ModelVersion:
    """A version whose test predictions are right except on `wrong` test images (eczema ones first)."""
    run = TrainingRun.objects.create(
        snapshot=snapshot, preset="tiny", config={}, config_hash=f"h{TrainingRun.objects.count()}", status="succeeded"
    )
    version = ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config={},
        class_map={"0": "eczema", "1": "melanoma"},
        artifact=f"models/run-{run.pk}/model.keras",
        artifact_sha256="0" * 64,
        artifact_size=1,
    )
    labels = judged_labels(version, snapshot_test_labels(snapshot))
    image_ids = sorted(labels, key=lambda image_id: (labels[image_id] != "eczema", image_id))[:scored_images]
    probabilities = []
    for position, image_id in enumerate(image_ids):
        right = CLASSES.index(labels[image_id])
        predicted = 1 - right if position < wrong else right
        probabilities.append([0.9 if index == predicted else 0.1 for index in range(2)])
    image_scores_store(model_version=version, image_ids=image_ids, probabilities=probabilities)
    version.metrics = metrics_on(version, {image_id: labels[image_id] for image_id in image_ids})
    version.save(update_fields=["metrics"])
    return version


def promote(api, user, version, **payload):
    return api(user).post(f"/api/v1/models/{version.pk}/promote/", payload, format="json")


def test_a_model_below_the_minimum_macro_f1_is_refused_even_with_no_production_model(api, curator, snapshot):
    chance = scored_version(snapshot, wrong=6)  # every eczema image wrong

    refused = promote(api, curator, chance)

    assert refused.status_code == 400
    assert f"Model v{chance.pk} has macro F1 0.333 on its test split, below the minimum 0.500" in str(refused.json())
    assert not ModelVersion.objects.filter(is_production=True).exists()


def test_the_minimum_macro_f1_is_a_setting(api, curator, snapshot, settings):
    settings.ML_PROMOTION_MIN_MACRO_F1 = 0.2

    assert promote(api, curator, scored_version(snapshot, wrong=6)).status_code == 200


def test_a_class_with_too_few_test_images_is_refused_with_the_counts(api, curator, snapshot, settings):
    settings.ML_PROMOTION_MIN_TEST_PER_CLASS = 7

    refused = promote(api, curator, scored_version(snapshot, wrong=0))

    assert refused.status_code == 400
    assert "fewer than 7 images (ML_PROMOTION_MIN_TEST_PER_CLASS) of: eczema (6), melanoma (6)" in str(refused.json())


def test_a_model_worse_than_production_on_the_same_images_is_refused(api, curator, snapshot):
    good, worse = scored_version(snapshot, wrong=0), scored_version(snapshot, wrong=2)
    assert promote(api, curator, good).status_code == 200

    refused = promote(api, curator, worse)

    assert refused.status_code == 400
    assert f"worse than the production model v{good.pk} on the same 12 test images: macro F1 0.829" in str(
        refused.json()
    )
    better = scored_version(snapshot, wrong=0)
    assert promote(api, curator, better).status_code == 200, "as good as production is enough"


def test_a_model_sharing_no_scored_test_image_with_production_is_refused(api, curator, snapshot, image_factory):
    production = scored_version(snapshot, wrong=0)
    assert promote(api, curator, production).status_code == 200
    for code in CLASSES:
        image_factory.create_batch(12, status="labeled", label=LabelClass.objects.get(code=code))
    newer = snapshot_create(name="newer", ratios=[0.5, 0.0, 0.5])
    # Trained on the newer snapshot and scored only on its new test images.
    candidate = scored_version(newer, wrong=0)
    from ml.models import ImageScore

    ImageScore.objects.filter(model_version=candidate, image_id__in=snapshot_test_labels(snapshot)).delete()

    refused = promote(api, curator, candidate)

    assert refused.status_code == 400
    assert f"shares no scored test image with the production model v{production.pk}" in str(refused.json())


def test_force_needs_a_reason_which_goes_in_the_audit_log(api, curator, snapshot):
    good, worse = scored_version(snapshot, wrong=0), scored_version(snapshot, wrong=2)
    promote(api, curator, good)

    no_reason = promote(api, curator, worse, force=True)
    forced = promote(api, curator, worse, force=True, reason="  the dermatology board asked for it  ")

    assert no_reason.status_code == 400 and "A forced promotion needs a reason" in str(no_reason.json())
    assert forced.status_code == 200 and forced.json()["is_production"]
    event = AuditEvent.objects.filter(action="model_promoted").order_by("pk").last()
    assert event.reason == "the dermatology board asked for it"
    assert event.after["forced"] is True and event.before["production"] == good.pk
    assert any("worse than the production model" in refusal for refusal in event.after["overridden"])


def test_compare_page_measures_both_models_on_the_same_images_and_says_which(client, curator, snapshot):
    first, second = scored_version(snapshot, wrong=2), scored_version(snapshot, wrong=0)
    client.force_login(curator)

    page = client.get(f"/ml/models/compare/?a={first.pk}&b={second.pk}").content.decode()

    assert (
        "Compared on the same images with the same labels: 12 images of the lineage&#x27;s protected test split" in page
    )
    assert "0.171" in page, "macro F1 up from 0.829 to 1.000 on the shared images"


def test_model_page_shows_an_html_confusion_matrix_with_clinical_names_and_cells_linking_to_images(
    client, curator, snapshot
):
    version = scored_version(snapshot, wrong=2)
    from ml.models import EvaluationKind
    from ml.services.evaluations import model_evaluation_create

    model_evaluation_create(
        model_version=version,
        kind=EvaluationKind.OWN_TEST,
        snapshot=snapshot,
        labels=judged_labels(version, snapshot_test_labels(snapshot)),
        metrics=version.metrics,
    )
    client.force_login(curator)

    page = client.get(f"/ml/models/{version.pk}/").content.decode()
    cell = client.get(f"/ml/models/{version.pk}/confusion/?true=eczema&predicted=melanoma").content.decode()

    assert '<table class="confusion"' in page
    assert LabelClass.objects.get(code="eczema").name in page
    assert f"/ml/models/{version.pk}/confusion/?true=eczema&amp;predicted=melanoma" in page
    assert cell.count('alt="Image ') == 2, "the two eczema images predicted as melanoma"
    assert "0.100" in cell, "each with its probability of the true class"
    assert client.get(f"/ml/models/{version.pk}/confusion/?true=eczema&predicted=nope").status_code == 404
