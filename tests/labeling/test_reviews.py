from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from core.models import AuditEvent
from labeling.models import Adjudication, Review, ReviewLease
from labeling.services.queue import review_lease_release, review_queue_next
from labeling.services.reviews import adjudication_submit, review_undo
from tests.conftest import make_user
from tests.reviewing import decide, give

pytestmark = pytest.mark.django_db


def submit(api, user, image, *, leased=True, **decision):
    """POST a review; by default the reader was given the image first, as the queue would."""
    if leased and user is not None:
        give(user, image)
    return api(user).post("/api/v1/reviews/", {"image": image.pk, **decision}, format="json")


# --- consensus -------------------------------------------------------------------------------------------------


def test_two_agreeing_readers_label_the_image(reviewer, reviewer2, image_factory):
    image = image_factory()

    decide(reader=reviewer, image_id=image.pk, label_code="melanoma")
    image.refresh_from_db()
    assert image.status == "pending", "one of two readers is not enough"
    decide(reader=reviewer2, image_id=image.pk, label_code="melanoma")

    image.refresh_from_db()
    assert (image.status, image.label.code) == ("labeled", "melanoma")
    assert image.decided_at is not None


def test_disagreeing_readers_send_the_image_to_adjudication(reviewer, reviewer2, image_factory):
    image = image_factory()

    decide(reader=reviewer, image_id=image.pk, label_code="melanoma")
    decide(reader=reviewer2, image_id=image.pk, label_code="melanocytic_nevi")

    image.refresh_from_db()
    assert (image.status, image.label) == ("disputed", None)


def test_a_class_against_cannot_judge_is_a_dispute(reviewer, reviewer2, image_factory):
    image = image_factory()

    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, cannot_judge=True, reason="blurry")

    image.refresh_from_db()
    assert image.status == "disputed"


def test_all_cannot_judge_excludes_the_image_with_the_reason(reviewer, reviewer2, image_factory):
    image = image_factory()

    decide(reader=reviewer, image_id=image.pk, cannot_judge=True, reason="not_skin")
    decide(reader=reviewer2, image_id=image.pk, cannot_judge=True, reason="not_skin", comment="a wall")

    image.refresh_from_db()
    assert (image.status, image.exclusion_reason, image.exclusion_comment) == ("excluded", "not_skin", "a wall")


def test_normal_skin_is_a_class_like_any_other(reviewer, reviewer2, image_factory):
    image = image_factory()

    decide(reader=reviewer, image_id=image.pk, label_code="normal_skin")
    decide(reader=reviewer2, image_id=image.pk, label_code="normal_skin")

    image.refresh_from_db()
    assert image.label.code == "normal_skin"


def test_the_number_of_readers_is_a_setting(settings, reviewer, reviewer2, adjudicator, image_factory):
    settings.DERMCURATE_REVIEWS_REQUIRED = 3
    image = image_factory()

    for reader in (reviewer, reviewer2):
        decide(reader=reader, image_id=image.pk, label_code="bcc")
    image.refresh_from_db()
    assert image.status == "pending"
    decide(reader=adjudicator, image_id=image.pk, label_code="bcc")

    image.refresh_from_db()
    assert image.status == "labeled"


def test_a_trusted_source_counts_as_one_agreeing_reader(reviewer, image_factory):
    agreeing = image_factory(source_code="eczema", source_code__trusted=True, source_code__name="atlas")
    disagreeing = image_factory(source_code="eczema", source_code__trusted=True, source_code__name="atlas")

    decide(reader=reviewer, image_id=agreeing.pk, label_code="eczema")
    decide(reader=reviewer, image_id=disagreeing.pk, label_code="psoriasis_lichen_planus")

    agreeing.refresh_from_db()
    disagreeing.refresh_from_db()
    assert (agreeing.status, agreeing.label.code) == ("labeled", "eczema")
    assert disagreeing.status == "disputed"


def test_an_untrusted_source_label_is_no_vote(reviewer, image_factory):
    image = image_factory(source_code="eczema")

    decide(reader=reviewer, image_id=image.pk, label_code="eczema")

    image.refresh_from_db()
    assert image.status == "pending"


# --- the queue and its leases ------------------------------------------------------------------------------------


def test_two_readers_never_get_the_same_image_and_holds_come_back_first(reviewer, reviewer2, image_factory):
    images = image_factory.create_batch(4)

    first = review_queue_next(reader=reviewer, count=2)
    second = review_queue_next(reader=reviewer2, count=2)
    again = review_queue_next(reader=reviewer, count=2)

    assert {lease.image_id for lease in first}.isdisjoint({lease.image_id for lease in second})
    assert [lease.image_id for lease in again] == [lease.image_id for lease in first]
    assert {lease.image_id for lease in first + second} == {image.pk for image in images}


def test_an_expired_lease_frees_the_image(reviewer, reviewer2, image_factory):
    image = image_factory()
    review_queue_next(reader=reviewer)
    assert review_queue_next(reader=reviewer2) == []

    ReviewLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert [lease.image_id for lease in review_queue_next(reader=reviewer2)] == [image.pk]


def test_the_queue_skips_images_reviewed_by_me_decided_or_excluded(reviewer, reviewer2, image_factory):
    mine = image_factory()
    image_factory(status="excluded", exclusion_reason="blurry")
    image_factory(status="labeled", label_id=1)
    image_factory(status="disputed")
    open_image = image_factory()
    decide(reader=reviewer, image_id=mine.pk, label_code="eczema")

    mine_next = review_queue_next(reader=reviewer, count=5)
    theirs_next = review_queue_next(reader=reviewer2, count=5)

    assert [lease.image_id for lease in mine_next] == [open_image.pk]
    assert {lease.image_id for lease in theirs_next} == {mine.pk}, "the other reader still needs to see it"


def test_a_skipped_image_leaves_my_queue_but_not_the_others(reviewer, reviewer2, image_factory):
    image = image_factory()
    review_queue_next(reader=reviewer)

    review_lease_release(reader=reviewer, image_id=image.pk)

    assert review_queue_next(reader=reviewer) == []
    assert [lease.image_id for lease in review_queue_next(reader=reviewer2)] == [image.pk]


def test_queue_api_returns_images_and_progress(api, reviewer, image_factory):
    image_factory.create_batch(3)

    response = api(reviewer).get("/api/v1/review-queue/next/?count=2")

    body = response.json()
    assert response.status_code == 200
    assert len(body["items"]) == 2
    assert body["progress"] == {"today": 0, "total": 0, "left": 3, "left_more": False}
    assert body["items"][0]["image_url"].endswith("/image.jpg")


# --- blindness ---------------------------------------------------------------------------------------------------


def test_before_deciding_a_reader_sees_no_source_label_and_no_other_reading(
    api, client, reviewer, reviewer2, image_factory
):
    image = image_factory(source_code="melanoma")
    decide(reader=reviewer2, image_id=image.pk, label_code="seborrheic_keratoses")
    client.force_login(reviewer)

    page = client.get("/review/").content.decode()
    queue = api(reviewer).get("/api/v1/review-queue/next/?count=5")
    reviews = api(reviewer).get(f"/api/v1/reviews/?image={image.pk}")
    images = api(reviewer).get(f"/api/v1/images/{image.pk}/")

    assert f"/files/images/{image.pk}/" not in page, "the page is a shell; images come from the queue"
    assert [item["image"] for item in queue.json()["items"]] == [image.pk]
    for text in (queue.content.decode(), reviews.content.decode()):
        assert "melanoma" not in text and "seborrheic" not in text
    assert reviews.json()["count"] == 0
    assert images.status_code == 403


def test_a_reader_lists_only_their_own_reviews(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image_factory().pk, label_code="bcc")

    mine = api(reviewer).get("/api/v1/reviews/?mine=1").json()
    everything = api(reviewer).get("/api/v1/reviews/").json()

    assert [r["label"] for r in mine["results"]] == ["eczema"]
    assert everything["count"] == 1


def test_adjudicators_see_every_review_of_a_disputed_image(api, reviewer, reviewer2, adjudicator, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="atopic_dermatitis")

    reviews = api(adjudicator).get(f"/api/v1/reviews/?image={image.pk}").json()

    assert sorted(r["label"] for r in reviews["results"]) == ["atopic_dermatitis", "eczema"]


def test_the_source_label_is_revealed_after_submitting_only_when_the_setting_says_so(
    api, settings, reviewer, image_factory
):
    hidden = submit(api, reviewer, image_factory(source_code="melanoma"), label="bcc").json()
    settings.DERMCURATE_REVEAL_SOURCE_LABEL = True
    shown = submit(api, reviewer, image_factory(source_code="melanoma"), label="bcc").json()

    assert hidden["revealed_source_label"] is None
    assert shown["revealed_source_label"] == "melanoma"


# --- the review API and its errors --------------------------------------------------------------------------------


def test_review_api_stores_the_decision_and_time_spent(api, reviewer, image_factory):
    image = image_factory()

    response = submit(api, reviewer, image, label="viral_infections", seconds_spent=3.4)

    assert response.status_code == 201
    review = Review.objects.get()
    assert (review.label.code, review.seconds_spent, review.reader) == ("viral_infections", 3.4, reviewer)
    assert ReviewLease.objects.count() == 0


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ({"label": "rosacea"}, "Unknown class code 'rosacea'"),
        ({"cannot_judge": True}, "Cannot judge needs a reason"),
        ({"cannot_judge": True, "reason": "other"}, "needs a comment"),
        ({}, "Give a class code, or cannot_judge"),
        ({"label": "eczema", "cannot_judge": True, "reason": "blurry"}, "not both"),
    ],
)
def test_review_api_refuses_bad_decisions_with_a_message(api, reviewer, image_factory, decision, message):
    response = submit(api, reviewer, image_factory(), **decision)

    assert response.status_code == 400
    assert message in str(response.json())
    assert Review.objects.count() == 0


def test_review_api_refuses_a_second_review_excluded_and_decided_images(api, reviewer, image_factory):
    image = image_factory()
    submit(api, reviewer, image, label="eczema")

    again = submit(api, reviewer, image, label="eczema")
    excluded = submit(api, reviewer, image_factory(status="excluded", exclusion_reason="blurry"), label="eczema")
    decided = submit(api, reviewer, image_factory(status="labeled", label_id=1), label="eczema")
    missing = api(reviewer).post("/api/v1/reviews/", {"image": 999999, "label": "eczema"}, format="json")

    assert again.status_code == 400 and "already reviewed" in again.json()["detail"]
    assert excluded.status_code == 400 and "excluded" in excluded.json()["detail"]
    assert decided.status_code == 400 and "already decided" in decided.json()["detail"]
    assert missing.status_code == 400 and "no image 999999" in missing.json()["detail"]
    assert Review.objects.count() == 1


def test_review_api_is_for_readers(api, curator, exporter, image_factory):
    image = image_factory()

    assert submit(api, curator, image, leased=False, label="eczema").status_code == 403
    assert submit(api, exporter, image, leased=False, label="eczema").status_code == 403
    assert submit(api, None, image, label="eczema").status_code == 401
    assert api(None).get("/api/v1/review-queue/next/").status_code == 401
    assert api(curator).get("/api/v1/review-queue/next/").status_code == 403


def test_the_review_page_needs_a_reader_role(client, curator, reviewer, adjudicator):
    assert client.get("/review/").status_code == 302
    client.force_login(curator)
    assert client.get("/review/").status_code == 403
    for reader in (reviewer, adjudicator):
        client.force_login(reader)
        page = client.get("/review/").content.decode()
        assert 'data-key="W"' in page and "Warts, molluscum" in page, "class 10 has a documented key"


# --- undo ---------------------------------------------------------------------------------------------------------


def test_undo_retracts_my_last_review_and_gives_the_image_back_to_me(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    submit(api, reviewer, image, label="eczema")

    response = api(reviewer).post("/api/v1/reviews/undo/")

    assert response.status_code == 200 and response.json()["image"] == image.pk
    review = Review.objects.get()
    assert review.retracted_at is not None, "retracted, never deleted"
    assert [lease.image_id for lease in review_queue_next(reader=reviewer)] == [image.pk]
    assert review_queue_next(reader=reviewer2) == [], "held for the reader who undid"
    assert submit(api, reviewer, image, label="bcc").status_code == 201
    assert Review.objects.count() == 2


def test_undo_is_refused_once_consensus_used_the_review_or_after_the_window(
    settings, reviewer, reviewer2, image_factory
):
    decided = image_factory()
    decide(reader=reviewer, image_id=decided.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=decided.pk, label_code="eczema")

    with pytest.raises(ValidationError, match="already decided"):
        review_undo(reader=reviewer2)
    old = image_factory()
    decide(reader=reviewer, image_id=old.pk, label_code="eczema")
    Review.objects.filter(reader=reviewer).update(created_at=timezone.now() - timedelta(minutes=10))
    with pytest.raises(ValidationError, match="can no longer be undone"):
        review_undo(reader=reviewer)
    with pytest.raises(ValidationError, match="no review of yours"):
        review_undo(reader=make_user("fresh", Role.REVIEWER))


# --- adjudication -------------------------------------------------------------------------------------------------


def disputed(image_factory, reviewer, reviewer2):
    image = image_factory(source_code="eczema")
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="atopic_dermatitis", comment="dry, flexural")
    return image


def test_adjudicator_decides_a_dispute_through_the_api(api, reviewer, reviewer2, adjudicator, image_factory):
    image = disputed(image_factory, reviewer, reviewer2)

    response = api(adjudicator).post(
        "/api/v1/adjudications/",
        {"image": image.pk, "label": "atopic_dermatitis", "note": "distribution"},
        format="json",
    )

    assert response.status_code == 201
    image.refresh_from_db()
    assert (image.status, image.label.code) == ("labeled", "atopic_dermatitis")
    assert Adjudication.objects.get().note == "distribution"
    assert Review.objects.filter(image=image).count() == 2, "stored apart from the reviews"


def test_adjudication_can_exclude_and_is_refused_when_not_disputed_or_not_adjudicator(
    api, reviewer, reviewer2, adjudicator, image_factory
):
    image = disputed(image_factory, reviewer, reviewer2)

    by_reader = api(reviewer).post("/api/v1/adjudications/", {"image": image.pk, "label": "eczema"}, format="json")
    not_disputed = api(adjudicator).post(
        "/api/v1/adjudications/", {"image": image_factory().pk, "label": "eczema"}, format="json"
    )
    excluded = api(adjudicator).post(
        "/api/v1/adjudications/",
        {"image": image.pk, "cannot_judge": True, "reason": "multiple_conditions"},
        format="json",
    )

    assert by_reader.status_code == 403
    assert not_disputed.status_code == 400 and "not in dispute" in not_disputed.json()["detail"]
    assert excluded.status_code == 201
    image.refresh_from_db()
    assert (image.status, image.exclusion_reason) == ("excluded", "multiple_conditions")


def test_adjudication_page_shows_every_review_and_the_source_label(
    client, reviewer, reviewer2, adjudicator, image_factory
):
    image = disputed(image_factory, reviewer, reviewer2)
    client.force_login(adjudicator)

    listing = client.get("/adjudicate/").content.decode()
    page = client.get(f"/adjudicate/{image.pk}/").content.decode()
    decided = client.post(f"/adjudicate/{image.pk}/", {"label": "eczema", "note": "classic"})

    assert f"/adjudicate/{image.pk}/" in listing
    for text in ("reviewer1", "reviewer2", "atopic_dermatitis", "dry, flexural", "eczema"):
        assert text in page
    assert "Source label" in page
    assert decided.status_code == 302
    image.refresh_from_db()
    assert image.label.code == "eczema"


def test_adjudication_service_checks_the_role(reviewer, reviewer2, image_factory):
    image = disputed(image_factory, reviewer, reviewer2)

    with pytest.raises(Exception, match="Only adjudicators"):
        adjudication_submit(adjudicator=reviewer, image_id=image.pk, label_code="eczema")


# --- audit ---------------------------------------------------------------------------------------------------------


def test_reviews_undos_consensus_and_adjudications_are_audited(reviewer, reviewer2, adjudicator, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    review_undo(reader=reviewer)
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="bcc")
    adjudication_submit(adjudicator=adjudicator, image_id=image.pk, label_code="bcc", note="nodular")

    events = list(AuditEvent.objects.order_by("pk").values_list("action", "actor__username"))

    assert events == [
        ("review", "reviewer1"),
        ("review_undone", "reviewer1"),
        ("review", "reviewer1"),
        ("review", "reviewer2"),
        ("consensus_disputed", "reviewer2"),
        ("adjudication", "senior"),
    ]
    final = AuditEvent.objects.get(action="adjudication")
    assert final.before == {"status": "disputed", "label": None, "exclusion_reason": ""}
    assert final.after["label"] == "bcc" and final.after["note"] == "nodular"


def test_the_audit_log_is_append_only_even_for_raw_sql(reviewer, image_factory):
    decide(reader=reviewer, image_id=image_factory().pk, label_code="eczema")
    event = AuditEvent.objects.get()

    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET action = 'tampered'")


def test_reviews_cannot_be_deleted_even_with_raw_sql(reviewer, image_factory):
    decide(reader=reviewer, image_id=image_factory().pk, label_code="eczema")

    with pytest.raises(Exception, match=r"append-only|never deleted"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM labeling_review")


def test_progress_counts_today_total_and_left(api, reviewer, image_factory):
    images = image_factory.create_batch(3)
    submit(api, reviewer, images[0], label="eczema")
    Review.objects.update(created_at=timezone.now() - timedelta(days=2))
    submit(api, reviewer, images[1], label="eczema")

    progress = api(reviewer).get("/api/v1/review-queue/next/").json()["progress"]

    assert progress == {"today": 1, "total": 2, "left": 1, "left_more": False}


def test_curator_override_needs_a_reason_and_a_confirmation_and_the_audit_trail_reads_plainly(
    client, curator, reviewer, reviewer2, image_factory
):
    image = image_factory(source_code="eczema")
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="eczema")
    client.force_login(curator)
    url = f"/curation/images/{image.pk}/"

    no_reason = client.post(url, {"label": "atopic_dermatitis", "confirm": "on"})
    no_confirmation = client.post(url, {"label": "atopic_dermatitis", "reason": "biopsy"})
    both = client.post(url, {"label": "bcc", "exclusion_reason": "blurry", "reason": "x", "confirm": "on"})
    unknown = client.post(url, {"label": "rosacea", "reason": "x", "confirm": "on"})
    relabel = client.post(url, {"label": "atopic_dermatitis", "reason": "biopsy: atopic", "confirm": "on"})
    page = client.get(url).content.decode()

    for refused, text in (
        (no_reason, "reason"),
        (no_confirmation, "confirm"),
        (both, "Give either a class or an exclusion reason"),
        (unknown, "rosacea"),
    ):
        assert refused.status_code == 400 and text in refused.content.decode()
    assert relabel.status_code == 302
    image.refresh_from_db()
    assert image.label.code == "atopic_dermatitis"
    override = AuditEvent.objects.get(action="curator_override")
    assert (override.actor, override.reason) == (curator, "biopsy: atopic")
    assert (override.before["label"], override.after["label"]) == ("eczema", "atopic_dermatitis")
    # Who, when, from → to, why; names, never codes or raw dicts.
    assert "Curator override" in page and "Class: Eczema → <strong>Atopic dermatitis</strong>" in page
    assert "biopsy: atopic" in page and "Consensus: labeled" in page and "reviewer1" in page
    assert "{&#x27;" not in page and "curator_override" not in page
    client.force_login(reviewer)
    assert client.get(url).status_code == 403


def test_images_left_are_counted_up_to_a_cap(api, reviewer, image_factory, monkeypatch):
    from labeling.selectors import progress

    monkeypatch.setattr(progress, "LEFT_COUNT_CAP", 2)
    image_factory.create_batch(3)

    body = api(reviewer).get("/api/v1/review-queue/next/").json()

    assert (body["progress"]["left"], body["progress"]["left_more"]) == (2, True)
