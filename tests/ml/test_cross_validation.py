"""Cross-validation runs: K=2 fold models with real TensorFlow on tiny pictures, and every refusal of a request."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.models import DuplicateGroup, Image, SnapshotItem
from ml.models import CrossValPrediction, ImageScore, LabelIssue, TrainingRun
from tests.ml.conftest import MODEL_CLASS_INDEXES, QUICK
from tests.samples import labeled_demo_snapshot

ONE_STAGE = {**QUICK, "stage2_epochs": 0}


@pytest.fixture
def snapshot(tmp_path):
    """3 classes × 8 pictures: 4 train, 2 val and 2 test images of each."""
    return labeled_demo_snapshot(
        tmp_path / "set", name="cv", per_class=8, size=(80, 64), classes=MODEL_CLASS_INDEXES, ratios=[0.5, 0.25, 0.25]
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_a_cross_validation_run_stores_out_of_fold_probabilities_for_every_item_and_ranks_label_issues(snapshot):
    folded = list(SnapshotItem.objects.filter(snapshot=snapshot).exclude(split="test").order_by("pk"))
    # Three train/val images of different classes found to be duplicates since: they must share a fold.
    group = DuplicateGroup.objects.create()
    tied = [folded[0].image_id, folded[7].image_id, folded[-1].image_id]
    Image.objects.filter(pk__in=tied).update(duplicate_group=group)
    out = io.StringIO()

    call_command(
        "train",
        "--snapshot",
        str(snapshot.pk),
        "--preset",
        "tiny",
        "--config",
        json.dumps(ONE_STAGE),
        "--cross-val",
        "2",
        "--sync",
        "--json",
        stdout=out,
    )

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["cross_val"] == 2 and summary["label_issues"] == LabelIssue.objects.count()
    run = TrainingRun.objects.get(pk=summary["run"])
    predictions = {p.image_id: p for p in CrossValPrediction.objects.filter(run=run)}
    items = {item.image_id: item for item in SnapshotItem.objects.filter(snapshot=snapshot)}
    assert set(predictions) == set(items), "every item has a probability"
    for image_id, prediction in predictions.items():
        assert prediction.split == items[image_id].split and prediction.given_label_id == items[image_id].label_id
        assert (prediction.fold is None) == (prediction.split == "test")
        assert len(prediction.calibrated) == 3 and abs(sum(prediction.calibrated) - 1) < 1e-5
    assert {predictions[image_id].fold for image_id in tied} in ({1}, {2}), "a duplicate group stays in one fold"
    assert {p.fold for p in predictions.values() if p.fold} == {1, 2}
    # Test items: the final model's probabilities (its own test scores), never a fold model's.
    final = run.model_version
    test_scores = dict(ImageScore.objects.filter(model_version=final).values_list("image_id", "probabilities"))
    for image_id, prediction in predictions.items():
        if prediction.split == "test":
            assert prediction.probabilities == pytest.approx(test_scores[image_id], abs=1e-6)
    report = run.cross_val_report
    assert [fold["fold"] for fold in report] == [1, 2]
    assert sum(fold["held_out"] for fold in report) == len(folded)
    for fold in report:
        assert fold["train"] + fold["val"] + fold["held_out"] == len(folded), "trained on the rest, never on itself"
    assert {entry["fold"] for entry in run.history} == {1, 2, None}, "both folds and the final model reported"
    assert run.progress_done == run.progress_total > 0
    ranks = list(LabelIssue.objects.filter(run=run).values_list("rank", flat=True))
    assert ranks == list(range(1, len(ranks) + 1))


def post_run(api, user, snapshot, **fields):
    return api(user).post(
        "/api/v1/training-runs/", {"snapshot": snapshot.pk, "preset": "tiny", "config": QUICK, **fields}, format="json"
    )


@pytest.mark.django_db
def test_a_cross_validation_request_with_too_few_images_of_a_class_is_refused_with_the_counts(
    api, curator, client, snapshot
):
    # 6 train and val images of each class: 7 folds are too many.
    too_many = post_run(api, curator, snapshot, cross_val=7)
    with pytest.raises(CommandError, match=r"melanoma \(6\)"):
        call_command("train", "--snapshot", str(snapshot.pk), "--preset", "tiny", "--cross-val", "7")
    client.force_login(curator)
    page = client.post("/ml/runs/", {"snapshot": snapshot.pk, "preset": "tiny", "cross_val": "7"})

    assert too_many.status_code == 400
    message = str(too_many.json())
    assert "at least 7" in message and "eczema (6)" in message
    assert "eczema 6, melanoma 6, melanocytic_nevi 6" in message
    assert page.status_code == 400 and "melanoma (6)" in page.content.decode()
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"), [(1, "greater than or equal to 2"), (21, "less than or equal to 20"), ("x", "whole number")]
)
def test_a_cross_validation_request_with_a_bad_number_of_folds_is_a_400_naming_the_field(
    api, curator, client, snapshot, value, message
):
    response = post_run(api, curator, snapshot, cross_val=value)
    client.force_login(curator)
    page = client.post("/ml/runs/", {"snapshot": snapshot.pk, "preset": "tiny", "cross_val": str(value)})

    assert response.status_code == 400 and message in str(response.json()["cross_val"])
    assert page.status_code == 400 and "Cross-validation folds" in page.content.decode()
    with pytest.raises(CommandError, match="between 2 and 20"):
        call_command("train", "--snapshot", str(snapshot.pk), "--preset", "tiny", "--cross-val", "1")
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_a_cross_validation_run_and_a_plain_run_of_the_same_config_are_different_runs(api, curator, snapshot):
    cross = post_run(api, curator, snapshot, cross_val=2)
    plain = post_run(api, curator, snapshot)
    cross_again = post_run(api, curator, snapshot, cross_val=2)
    three = post_run(api, curator, snapshot, cross_val=3)

    assert cross.status_code == 201 and plain.status_code == 201 and three.status_code == 201
    assert cross.json()["cross_val"] == 2 and plain.json()["cross_val"] == 0
    assert cross_again.status_code == 200 and cross_again.json()["id"] == cross.json()["id"]
    assert len({cross.json()["id"], plain.json()["id"], three.json()["id"]}) == 3
