"""Re-review rounds: decided images back to readers who have not seen them, decided by that round alone, with
the label before and after kept and counted; excluded, pending and unknown images refused by name."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import AuditEvent
from curation.models import Image, LabelClass
from labeling.models import RereviewRound, ReviewLease, ReviewSkip
from labeling.services.queue import review_lease_release, review_queue_next, review_queue_open
from labeling.services.rereview import rereview_request
from labeling.services.reviews import adjudication_submit, adjudication_undo, review_change, review_undo
from tests.conftest import make_user
from tests.reviewing import decide

pytestmark = pytest.mark.django_db


@pytest.fixture
def readers(db):
    return [make_user(f"fresh{i}", "reviewer") for i in range(3)]


def labeled(image_factory, first, second, code="melanoma", **fields):
    image = image_factory(**fields)
    decide(reader=first, image_id=image.pk, label_code=code)
    decide(reader=second, image_id=image.pk, label_code=code)
    image.refresh_from_db()
    assert image.status == "labeled"
    return image


def queue_of(reader) -> list[int]:
    return [lease.image_id for lease in review_queue_next(reader=reader, count=10)]


def test_a_round_sends_the_image_to_new_readers_and_their_consensus_alone_decides_it(
    reviewer, reviewer2, curator, readers, image_factory
):
    image = labeled(image_factory, reviewer, reviewer2)

    (round_,) = rereview_request(requested_by=curator, image_ids=[image.pk], reason="model says nevus")

    image.refresh_from_db()
    assert (image.status, image.label) == ("pending", None)
    assert (round_.status_before, round_.label_before.code, round_.closed_at) == ("labeled", "melanoma", None)
    assert queue_of(reviewer) == [] and queue_of(reviewer2) == [], "its first readers are not asked again"
    assert queue_of(readers[0]) == [image.pk]
    decide(reader=readers[0], image_id=image.pk, label_code="melanocytic_nevi")
    image.refresh_from_db()
    assert image.status == "pending", "the first read's two reviews do not count for the round"
    decide(reader=readers[1], image_id=image.pk, label_code="melanocytic_nevi")

    image.refresh_from_db()
    round_.refresh_from_db()
    assert (image.status, image.label.code) == ("labeled", "melanocytic_nevi")
    assert round_.closed_at is not None
    assert (round_.status_after, round_.label_after.code, round_.changed) == ("labeled", "melanocytic_nevi", True)
    assert set(round_.reviews.values_list("reader__username", flat=True)) == {"fresh0", "fresh1"}
    event = AuditEvent.objects.get(action="rereview_requested", image_id=image.pk)
    assert (event.reason, event.before["label"], event.after["status"]) == ("model says nevus", "melanoma", "pending")


def test_a_round_that_agrees_with_the_first_read_keeps_the_label(reviewer, reviewer2, curator, readers, image_factory):
    image = labeled(image_factory, reviewer, reviewer2, code="eczema")
    (round_,) = rereview_request(requested_by=curator, image_ids=[image.pk])

    decide(reader=readers[0], image_id=image.pk, label_code="eczema")
    decide(reader=readers[1], image_id=image.pk, label_code="eczema")

    round_.refresh_from_db()
    assert (round_.changed, round_.label_after.code) == (False, "eczema")


def test_a_trusted_source_is_no_vote_in_a_round(settings, curator, readers, image_factory):
    settings.DERMCURATE_REVIEWS_REQUIRED = 2
    image = image_factory(source_code="eczema", source_code__trusted=True)
    decide(reader=readers[2], image_id=image.pk, label_code="eczema")  # with the trusted source: labeled
    image.refresh_from_db()
    assert image.status == "labeled"
    rereview_request(requested_by=curator, image_ids=[image.pk])

    decide(reader=readers[0], image_id=image.pk, label_code="eczema")

    image.refresh_from_db()
    assert image.status == "pending", "one fresh reader of two; the source's label is not a reader"


def test_readers_who_skipped_or_adjudicated_the_image_are_not_asked_again(
    reviewer, reviewer2, adjudicator, curator, readers, image_factory
):
    image = image_factory()
    assert queue_of(readers[2]) == [image.pk]
    review_lease_release(reader=readers[2], image_id=image.pk)  # skipped
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="melanoma")
    adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="eczema")
    ReviewSkip.objects.update(skipped_at=timezone.now() - timedelta(days=30))  # even once the skip has lapsed

    (round_,) = rereview_request(requested_by=curator, image_ids=[image.pk])

    assert set(round_.excluded_readers.values_list("username", flat=True)) == {
        "reviewer1",
        "reviewer2",
        "senior",
        "fresh2",
    }
    assert queue_of(adjudicator) == [] and queue_of(readers[2]) == []
    assert queue_of(readers[0]) == [image.pk]
    with pytest.raises(ValidationError, match="being read again"):
        review_queue_open(reader=readers[2], image_id=image.pk)


def test_a_dispute_in_a_round_goes_to_adjudication_again_and_its_undo_reopens_the_round(
    reviewer, reviewer2, adjudicator, curator, readers, image_factory
):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="melanoma")
    adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="eczema")
    (round_,) = rereview_request(requested_by=curator, image_ids=[image.pk])
    decide(reader=readers[0], image_id=image.pk, label_code="melanoma")
    decide(reader=readers[1], image_id=image.pk, label_code="melanocytic_nevi")
    image.refresh_from_db()
    assert image.status == "disputed"
    senior2 = make_user("senior2", "adjudicator")

    adjudication_submit(adjudicator=senior2, image_id=image.pk, label_code="melanoma")

    round_.refresh_from_db()
    assert (round_.changed, round_.label_after.code) == (True, "melanoma")
    assert image.adjudications.count() == 2, "the first read's adjudication is kept"
    adjudication_undo(adjudicator=senior2, image_id=image.pk)
    round_.refresh_from_db()
    image.refresh_from_db()
    assert (image.status, round_.closed_at, round_.changed) == ("disputed", None, None)
    assert image.adjudications.get().adjudicator == adjudicator


def test_first_readers_cannot_change_or_undo_their_decision_during_the_round(
    reviewer, reviewer2, curator, image_factory
):
    image = labeled(image_factory, reviewer, reviewer2)
    rereview_request(requested_by=curator, image_ids=[image.pk])

    with pytest.raises(ValidationError, match="being read again"):
        review_change(reader=reviewer, image_id=image.pk, label_code="eczema")
    with pytest.raises(ValidationError, match="being read again"):
        review_undo(reader=reviewer2)


def test_excluded_pending_and_unknown_images_refuse_the_whole_request_by_name(
    reviewer, reviewer2, curator, image_factory
):
    kept = labeled(image_factory, reviewer, reviewer2)
    excluded = [image_factory(status="excluded", exclusion_reason="blurry") for _ in range(2)]
    pending = image_factory()

    with pytest.raises(ValidationError) as refused:
        rereview_request(requested_by=curator, image_ids=[kept.pk, excluded[0].pk, excluded[1].pk])
    assert refused.value.code == "excluded"
    assert f"Images {excluded[0].pk}, {excluded[1].pk} are excluded" in refused.value.messages[0]
    with pytest.raises(ValidationError, match=f"Image {pending.pk} is still being read"):
        rereview_request(requested_by=curator, image_ids=[kept.pk, pending.pk])
    with pytest.raises(ValidationError, match="There is no image 999999"):
        rereview_request(requested_by=curator, image_ids=[kept.pk, 999999])
    kept.refresh_from_db()
    assert kept.status == "labeled" and RereviewRound.objects.count() == 0, "all or nothing"


def test_only_curators_send_images_back(reviewer, reviewer2, adjudicator, image_factory):
    from django.core.exceptions import PermissionDenied

    image = labeled(image_factory, reviewer, reviewer2)
    with pytest.raises(PermissionDenied):
        rereview_request(requested_by=adjudicator, image_ids=[image.pk])


def test_a_second_round_closes_an_open_one_that_ended_in_dispute(reviewer, reviewer2, curator, readers, image_factory):
    image = labeled(image_factory, reviewer, reviewer2)
    (first,) = rereview_request(requested_by=curator, image_ids=[image.pk])
    decide(reader=readers[0], image_id=image.pk, label_code="eczema")
    decide(reader=readers[1], image_id=image.pk, label_code="melanoma")

    (second,) = rereview_request(requested_by=curator, image_ids=[image.pk])

    first.refresh_from_db()
    assert (first.closed_at is not None, first.status_after, first.changed) == (True, "disputed", None)
    assert second.status_before == "disputed" and second.closed_at is None
    assert queue_of(readers[0]) == [] and queue_of(readers[2]) == [image.pk]


# --- API and pages --------------------------------------------------------------------------------------------


def test_the_rereview_api_opens_rounds_lists_and_counts_them(api, reviewer, reviewer2, curator, readers, image_factory):
    first = labeled(image_factory, reviewer, reviewer2, code="eczema")
    second = labeled(image_factory, reviewer, reviewer2, code="melanoma")

    created = api(curator).post(
        "/api/v1/rereviews/", {"images": [first.pk, second.pk], "reason": "label issues"}, format="json"
    )

    assert created.status_code == 201
    rounds = created.json()["rounds"]
    assert [(r["image"], r["label_before"], r["changed"], r["reason"]) for r in rounds] == [
        (first.pk, "eczema", None, "label issues"),
        (second.pk, "melanoma", None, "label issues"),
    ]
    for reader in readers[:2]:
        decide(reader=reader, image_id=first.pk, label_code="melanoma")
    changed = api(curator).get("/api/v1/rereviews/?state=changed").json()
    assert changed["count"] == 1 and changed["results"][0]["label_after"] == "melanoma"
    assert api(curator).get("/api/v1/rereviews/?state=open").json()["count"] == 1


def test_the_rereview_api_refuses_excluded_images_naming_them_and_bad_input(api, curator, reviewer, image_factory):
    excluded = image_factory(status="excluded", exclusion_reason="not_skin")

    refused = api(curator).post("/api/v1/rereviews/", {"images": [excluded.pk]}, format="json")

    assert refused.status_code == 400
    assert refused.json()["code"] == "excluded" and str(excluded.pk) in refused.json()["detail"]
    for body in ({}, {"images": []}, {"images": ["x"]}, {"images": [2**70]}, {"images": [1], "reason": "r" * 501}):
        response = api(curator).post("/api/v1/rereviews/", body, format="json")
        assert response.status_code == 400, body
        assert set(response.json()) & {"images", "reason"}, response.json()
    assert api(reviewer).post("/api/v1/rereviews/", {"images": [excluded.pk]}, format="json").status_code == 403
    assert api(reviewer).get("/api/v1/rereviews/").status_code == 403


def test_the_request_page_action_takes_ids_and_returns_to_the_page_it_came_from(
    client, curator, reviewer, reviewer2, image_factory
):
    images = [labeled(image_factory, reviewer, reviewer2) for _ in range(3)]
    client.force_login(curator)

    response = client.post(
        "/curation/rereviews/request/",
        {"images": [images[0].pk, f"{images[1].pk}, {images[2].pk}"], "next": "/curation/label-issues/?snapshot=1"},
    )

    assert response.status_code == 302 and response.url == "/curation/label-issues/?snapshot=1"
    assert Image.objects.filter(pk__in=[i.pk for i in images], status="pending").count() == 3
    page = client.get("/curation/rereviews/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "3 rounds" in html and "0 changed the label" in html
    assert all(f"#{image.pk}</a>" in html for image in images)


def test_the_request_page_action_refuses_with_400_naming_the_problem(client, curator, reviewer, image_factory):
    excluded = image_factory(status="excluded", exclusion_reason="blurry")
    client.force_login(curator)

    refused = client.post("/curation/rereviews/request/", {"images": [str(excluded.pk)]})
    bad = client.post("/curation/rereviews/request/", {"images": ["12", "twelve"]})
    empty = client.post("/curation/rereviews/request/", {"images": [""]})
    outside = client.post("/curation/rereviews/request/", {"images": [str(excluded.pk + 1)], "next": "https://evil"})

    assert refused.status_code == 400 and f"Image {excluded.pk} is excluded" in refused.content.decode()
    assert bad.status_code == 400 and "Images: &#x27;twelve&#x27; is not an image id." in bad.content.decode()
    assert empty.status_code == 400 and "Name at least one image" in empty.content.decode()
    assert outside.status_code == 400, "no image of that id"
    client.force_login(reviewer)
    assert client.post("/curation/rereviews/request/", {"images": [str(excluded.pk)]}).status_code == 403
    assert client.get("/curation/rereviews/").status_code == 403


def test_next_outside_the_site_is_not_followed(client, curator, reviewer, reviewer2, image_factory):
    image = labeled(image_factory, reviewer, reviewer2)
    client.force_login(curator)

    response = client.post("/curation/rereviews/request/", {"images": [str(image.pk)], "next": "https://evil.test/"})

    assert response.status_code == 302 and response.url == "/curation/rereviews/"


def test_the_image_page_sends_its_image_for_a_fresh_read(client, curator, reviewer, reviewer2, image_factory):
    image = labeled(image_factory, reviewer, reviewer2)
    client.force_login(curator)
    page = client.get(f"/curation/images/{image.pk}/").content.decode()
    assert 'id="rereview-form"' in page

    response = client.post(
        "/curation/rereviews/request/",
        {"images": str(image.pk), "reason": "biopsy pending", "next": f"/curation/images/{image.pk}/"},
    )

    assert response.status_code == 302 and response.url == f"/curation/images/{image.pk}/"
    after = client.get(response.url).content.decode()
    assert "Re-review rounds" in after and "biopsy pending" in after and 'id="rereview-form"' not in after
    assert ReviewLease.objects.filter(image=image).count() == 0
    assert LabelClass.objects.get(code="melanoma").name in after


def test_the_rereview_api_takes_its_body_as_typed(api, curator, reviewer, reviewer2, image_factory):
    image = labeled(image_factory, reviewer, reviewer2)

    for body in ({"images": [image.pk], "reason": 0}, {"images": [str(image.pk)]}, {"images": image.pk}):
        response = api(curator).post("/api/v1/rereviews/", body, format="json")
        assert response.status_code == 400, body
    assert RereviewRound.objects.count() == 0
