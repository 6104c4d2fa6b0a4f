"""Suspected label errors: ranked by cleanlab from a cross-validation run's probabilities, on the API and the page."""

import numpy as np
import pytest
from django.urls import reverse

from core.models import AuditEvent
from curation.models import ExclusionReason, Image, LabelClass, SnapshotItem
from curation.services.images import image_exclude, image_set_label
from ml.models import CrossValPrediction, LabelIssue, ModelVersion, TrainingRun
from ml.services.cross_validation import label_issues_store
from tests.ml.conftest import MODEL_CLASS_INDEXES, MODEL_CLASSES
from tests.samples import labeled_demo_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(tmp_path):
    return labeled_demo_snapshot(
        tmp_path / "set", name="cv", per_class=8, size=(80, 64), classes=MODEL_CLASS_INDEXES, ratios=[0.5, 0.25, 0.25]
    )


def cross_val_run(snapshot, *, wrong: int = 3, seed: int = 0) -> tuple[TrainingRun, list[int]]:
    """A finished 2-fold run whose stored probabilities agree with every label but those of `wrong` images, which
    they give confidently to another class. Returns the run and those images, worst first."""
    run = TrainingRun.objects.create(
        snapshot=snapshot, preset="tiny", config={}, config_hash="cv", cross_val=2, status="succeeded"
    )
    ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config={},
        class_map={str(i): code for i, code in enumerate(MODEL_CLASSES)},
        artifact="models/unused.keras",
        artifact_sha256="0" * 64,
        artifact_size=1,
    )
    position = {LabelClass.objects.get(code=code).pk: i for i, code in enumerate(MODEL_CLASSES)}
    rng = np.random.default_rng(seed)
    items = list(SnapshotItem.objects.filter(snapshot=snapshot).order_by("pk"))
    # One doubted image per class (round robin), so that no class's own confidence threshold drops with them.
    by_class = {}
    for item in items:
        by_class.setdefault(item.label_id, []).append(item)
    classes = sorted(by_class)
    doubted = [by_class[classes[n % len(classes)]][n // len(classes)].image_id for n in range(wrong)]
    rows = []
    for n, item in enumerate(items):
        probabilities = rng.dirichlet([1, 1, 1]) * 0.2
        if item.image_id in doubted:  # the given label gets little, the first doubted image least
            given, other = position[item.label_id], (position[item.label_id] + 1) % 3
            probabilities = np.full(3, 0.02)
            probabilities[given] = 0.01 * (doubted.index(item.image_id) + 1)
            probabilities[other] = 1 - probabilities.sum() + probabilities[other]
        else:
            probabilities[position[item.label_id]] += 0.8
        rows.append(
            CrossValPrediction(
                run=run,
                image_id=item.image_id,
                split=item.split,
                fold=None if item.split == "test" else n % 2 + 1,
                given_label_id=item.label_id,
                probabilities=probabilities.tolist(),
                calibrated=probabilities.tolist(),
            )
        )
    CrossValPrediction.objects.bulk_create(rows)
    assert label_issues_store(run=run) >= wrong
    return run, doubted


def test_the_api_lists_the_doubted_labels_worst_first_with_the_suggestion_and_flags_stale_items(api, curator, snapshot):
    run, doubted = cross_val_run(snapshot)
    frozen = SnapshotItem.objects.get(snapshot=snapshot, image_id=doubted[1]).label
    other = LabelClass.objects.filter(code__in=MODEL_CLASSES).exclude(pk=frozen.pk).first()
    image_set_label(image=Image.objects.get(pk=doubted[1]), label=other, actor=curator, action="test")
    image_exclude(image=Image.objects.get(pk=doubted[2]), reason=ExclusionReason.BLURRY, actor=curator, action="test")

    response = api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}&page_size=2")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == LabelIssue.objects.filter(run=run).count() and body["next"]
    first, second = body["results"]
    assert [first["image"], second["image"]] == doubted[:2]
    assert first["rank"] == 1 and first["score"] <= second["score"]
    assert first["suggested"] != first["label"] and first["suggested"] in MODEL_CLASSES
    assert first["stale"] is False and first["current_label"] == first["label"]
    assert second["stale"] is True and second["current_label"] != second["label"]
    assert first["thumbnail_url"].endswith(f"/files/images/{doubted[0]}/thumbnail.jpg")
    third = api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}&page_size=2&page=2").json()["results"][0]
    assert third["image"] == doubted[2] and third["stale"] is True and third["image_status"] == "excluded"
    assert third["current_label"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "required"),
        ("?snapshot=", "valid integer"),
        ("?snapshot=abc", "valid integer"),
        ("?snapshot=-1", "greater than or equal to 1"),
        ("?snapshot=99999999999999999999999", "less than or equal to"),
        ("?snapshot=999999", "There is no snapshot 999999"),
    ],
)
def test_a_missing_or_bad_snapshot_is_a_400_naming_the_field(api, curator, query, message):
    response = api(curator).get(f"/api/v1/label-issues/{query}")

    assert response.status_code == 400
    assert "snapshot" in response.json() and message in str(response.json()["snapshot"])


def test_a_snapshot_without_a_cross_validation_run_is_a_409_and_only_curators_may_ask(api, curator, reviewer, snapshot):
    TrainingRun.objects.create(snapshot=snapshot, preset="tiny", config={}, config_hash="plain", status="succeeded")

    response = api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}")
    bad_page = api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}&page_size=0")

    assert response.status_code == 409 and response.json()["code"] == "no_cross_validation"
    assert "--cross-val" in response.json()["detail"]
    assert api(reviewer).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}").status_code == 403
    assert api(None).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}").status_code == 401
    cross_val_run(snapshot)
    assert api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}&page_size=0").status_code == 400
    assert bad_page.status_code == 409


def test_a_curator_marks_a_suggestion_wrong_once_with_an_audit_record(api, curator, reviewer, snapshot):
    run, doubted = cross_val_run(snapshot)
    issue = LabelIssue.objects.get(run=run, image_id=doubted[0])

    marked = api(curator).post(
        f"/api/v1/label-issues/{issue.pk}/suggestion-wrong/", {"reason": "a BCC, biopsy-proven"}, format="json"
    )
    again = api(curator).post(f"/api/v1/label-issues/{issue.pk}/suggestion-wrong/", {}, format="json")
    too_long = api(curator).post(
        f"/api/v1/label-issues/{issue.pk + 1}/suggestion-wrong/", {"reason": "x" * 2001}, format="json"
    )
    unknown = api(curator).post("/api/v1/label-issues/999999/suggestion-wrong/", {}, format="json")
    forbidden = api(reviewer).post(f"/api/v1/label-issues/{issue.pk + 1}/suggestion-wrong/", {}, format="json")
    open_only = api(curator).get(f"/api/v1/label-issues/?snapshot={snapshot.pk}&open=true").json()

    assert marked.status_code == 200 and marked.json()["suggestion_wrong"] is True
    assert marked.json()["dismissed_reason"] == "a BCC, biopsy-proven"
    assert again.status_code == 400 and "already" in str(again.json())
    assert too_long.status_code == 400 and "reason" in too_long.json()
    assert unknown.status_code == 404 and forbidden.status_code == 403
    assert doubted[0] not in [row["image"] for row in open_only["results"]]
    event = AuditEvent.objects.get(action="label_issue_dismissed")
    assert event.image_id == doubted[0] and event.actor == curator and event.reason == "a BCC, biopsy-proven"
    assert event.before["suggested"] == issue.suggested.code


def test_the_page_shows_thumbnails_labels_suggestions_and_stale_items_and_marks_a_suggestion_wrong(
    client, curator, reviewer, snapshot
):
    run, doubted = cross_val_run(snapshot)
    image_exclude(image=Image.objects.get(pk=doubted[1]), reason=ExclusionReason.BLURRY, actor=curator, action="test")
    client.force_login(curator)

    picker = client.get("/curation/label-issues/")
    page = client.get(f"/curation/label-issues/?snapshot={snapshot.pk}")
    bad = client.get("/curation/label-issues/?snapshot=abc")
    unknown = client.get("/curation/label-issues/?snapshot=424242")
    issue = LabelIssue.objects.get(run=run, image_id=doubted[0])
    marked = client.post(f"/curation/label-issues/{issue.pk}/suggestion-wrong/", {"reason": "checked"})
    too_long = client.post(f"/curation/label-issues/{issue.pk + 1}/suggestion-wrong/", {"reason": "x" * 2001})
    twice = client.post(f"/curation/label-issues/{issue.pk}/suggestion-wrong/", {})
    after = client.get(f"/curation/label-issues/?snapshot={snapshot.pk}")

    html = page.content.decode()
    assert picker.status_code == 200 and "Choose a snapshot" in picker.content.decode()
    assert page.status_code == 200
    assert f'src="/files/images/{doubted[0]}/thumbnail.jpg"' in html
    assert html.count('id="issue-') == LabelIssue.objects.filter(run=run).count()
    assert ">stale<" in html and "Suggestion is wrong" in html
    assert LabelIssue.objects.get(pk=issue.pk).suggested.name in html
    assert f'<form id="rereview-form" method="post" action="{reverse("labeling:rereview-request")}"' in html
    assert bad.status_code == 400 and "is not the id of any snapshot" in bad.content.decode()
    assert unknown.status_code == 400 and "There is no snapshot 424242" in unknown.content.decode()
    assert marked.status_code == 302 and LabelIssue.objects.get(pk=issue.pk).dismissed_at is not None
    assert too_long.status_code == 400
    assert twice.status_code == 400 and "already" in twice.content.decode()
    assert "marked wrong by" in after.content.decode()
    client.force_login(reviewer)
    assert client.get(f"/curation/label-issues/?snapshot={snapshot.pk}").status_code == 403


def test_the_re_review_hook_posts_the_ticked_images_to_labeling(client, curator, snapshot):
    _, doubted = cross_val_run(snapshot)
    image_exclude(image=Image.objects.get(pk=doubted[1]), reason=ExclusionReason.BLURRY, actor=curator, action="test")
    client.force_login(curator)

    html = client.get(f"/curation/label-issues/?snapshot={snapshot.pk}").content.decode()

    assert f'<form id="rereview-form" method="post" action="{reverse("labeling:rereview-request")}"' in html
    assert f'name="image" value="{doubted[0]}" form="rereview-form"' in html
    excluded_box = html[html.index(f'value="{doubted[1]}" form="rereview-form"') :].split(">", 1)[0]
    assert "disabled" in excluded_box, "excluded images cannot be sent back"
