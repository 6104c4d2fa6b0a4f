"""A decision is bound to the image the reader was given; readers see only their own decisions;
their history lets them reopen skipped images and change decisions while the image is pending."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEvent
from labeling.models import Review, ReviewLease, ReviewSkip
from labeling.services.queue import review_queue_next
from tests.reviewing import decide, give

pytestmark = pytest.mark.django_db


def post(api, user, url, body=None):
    return api(user).post(url, body or {}, format="json")


# --- the decision is bound to the reader's lease ---------------------------------------------------------------------


def test_a_reader_cannot_decide_an_image_leased_to_someone_else_409(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    give(reviewer2, image)

    response = post(api, reviewer, "/api/v1/reviews/", {"image": image.pk, "label": "melanoma"})

    assert response.status_code == 409
    assert response.json() == {"detail": "This image is not in your queue.", "code": "not_in_queue"}
    assert Review.objects.count() == 0
    assert ReviewLease.objects.get().reader == reviewer2, "the other reader keeps the image"


def test_two_readers_cannot_choose_the_same_images_to_force_a_consensus(api, reviewer, reviewer2, image_factory):
    images = image_factory.create_batch(3)  # pending, never given to anyone

    answers = [
        post(api, reader, "/api/v1/reviews/", {"image": image.pk, "label": "bcc"}).status_code
        for image in images
        for reader in (reviewer, reviewer2)
    ]

    assert answers == [409] * 6
    assert Review.objects.count() == 0
    assert {image.status for image in images} == {"pending"}


def test_an_expired_lease_given_to_another_reader_is_no_longer_mine(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    review_queue_next(reader=reviewer)
    ReviewLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [lease.image_id for lease in review_queue_next(reader=reviewer2)] == [image.pk]

    late = post(api, reviewer, "/api/v1/reviews/", {"image": image.pk, "label": "eczema"})
    theirs = post(api, reviewer2, "/api/v1/reviews/", {"image": image.pk, "label": "eczema"})

    assert (late.status_code, late.json()["code"]) == (409, "not_in_queue")
    assert theirs.status_code == 201


def test_an_expired_lease_nobody_took_still_counts(api, reviewer, image_factory):
    image = image_factory()
    review_queue_next(reader=reviewer)
    ReviewLease.objects.update(expires_at=timezone.now() - timedelta(hours=1))

    response = post(api, reviewer, "/api/v1/reviews/", {"image": image.pk, "label": "eczema"})

    assert response.status_code == 201


def test_the_review_response_gives_a_reader_only_their_own_review(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    give(reviewer2, image)

    body = post(api, reviewer2, "/api/v1/reviews/", {"image": image.pk, "label": "eczema"}).json()

    assert "image_status" not in body and "status" not in body
    assert set(body) == {
        "id",
        "image",
        "reader",
        "label",
        "cannot_judge",
        "reason",
        "comment",
        "confidence",
        "seconds_spent",
        "created_at",
        "retracted_at",
        "replaces",
        "revealed_source_label",
    }
    assert body["reader"] == "reviewer2"
    assert "reviewer1" not in str(body)


def test_the_confidence_is_stored_and_bad_values_are_refused(api, reviewer, image_factory):
    unsure, bad = image_factory(), image_factory()
    give(reviewer, unsure)
    give(reviewer, bad)

    stored = post(api, reviewer, "/api/v1/reviews/", {"image": unsure.pk, "label": "bkl", "confidence": "unsure"})
    refused = post(api, reviewer, "/api/v1/reviews/", {"image": bad.pk, "label": "bkl", "confidence": "maybe"})
    negative = post(api, reviewer, "/api/v1/reviews/", {"image": bad.pk, "label": "bkl", "seconds_spent": -1})

    assert stored.status_code == 201 and Review.objects.get().confidence == "unsure"
    assert refused.status_code == 400 and "confidence" in refused.json()
    assert negative.status_code == 400 and "seconds_spent" in negative.json()


# --- skips -----------------------------------------------------------------------------------------------------------


def test_only_an_image_i_hold_can_be_skipped(api, reviewer, reviewer2, image_factory):
    mine, theirs = image_factory(), image_factory()
    give(reviewer, mine)
    give(reviewer2, theirs)

    skipped = post(api, reviewer, f"/api/v1/review-queue/{mine.pk}/skip/")
    not_mine = post(api, reviewer, f"/api/v1/review-queue/{theirs.pk}/skip/")

    assert skipped.status_code == 204
    assert (not_mine.status_code, not_mine.json()["code"]) == (409, "not_in_queue")
    assert list(ReviewSkip.objects.values_list("image_id", flat=True)) == [mine.pk]


def test_a_skipped_image_is_listed_and_can_be_reopened_and_decided(api, client, reviewer, image_factory):
    image = image_factory()
    give(reviewer, image)
    post(api, reviewer, f"/api/v1/review-queue/{image.pk}/skip/")
    client.force_login(reviewer)

    history = client.get("/review/history/").content.decode()
    opened = post(api, reviewer, f"/api/v1/review-queue/{image.pk}/open/")
    decided = post(api, reviewer, "/api/v1/reviews/", {"image": image.pk, "label": "melanoma"})

    assert f"/review/?image={image.pk}" in history and "Skipped" in history
    assert opened.status_code == 200
    assert opened.json()["mode"] == "new" and opened.json()["item"]["image"] == image.pk
    assert decided.status_code == 201
    assert f"/review/?image={image.pk}" not in client.get("/review/history/").content.decode().split("Decisions")[0]


def test_an_image_that_is_not_in_my_history_cannot_be_opened(api, reviewer, reviewer2, image_factory):
    never_seen, skipped_by_other = image_factory(), image_factory()
    give(reviewer2, skipped_by_other)
    post(api, reviewer2, f"/api/v1/review-queue/{skipped_by_other.pk}/skip/")

    for image in (never_seen, skipped_by_other):
        response = post(api, reviewer, f"/api/v1/review-queue/{image.pk}/open/")
        assert (response.status_code, response.json()["code"]) == (409, "not_in_queue")
    assert not ReviewLease.objects.filter(reader=reviewer).exists()
    missing = post(api, reviewer, f"/api/v1/review-queue/{skipped_by_other.pk + 1000}/open/")
    assert missing.status_code == 404 and "There is no image" in missing.json()["detail"]


def test_a_skipped_image_another_reader_holds_now_cannot_be_reopened(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    give(reviewer, image)
    post(api, reviewer, f"/api/v1/review-queue/{image.pk}/skip/")
    give(reviewer2, image)

    response = post(api, reviewer, f"/api/v1/review-queue/{image.pk}/open/")

    assert (response.status_code, response.json()["code"]) == (409, "held_by_other")


# --- changing a decision from the history --------------------------------------------------------------------------


def test_a_reader_changes_their_decision_while_the_image_is_pending(api, reviewer, image_factory):
    image = image_factory()
    first = decide(reader=reviewer, image_id=image.pk, label_code="eczema", seconds_spent=4.0)

    opened = post(api, reviewer, f"/api/v1/review-queue/{image.pk}/open/").json()
    changed = post(
        api,
        reviewer,
        "/api/v1/reviews/change/",
        {"image": image.pk, "label": "atopic_dermatitis", "confidence": "unsure", "seconds_spent": 2.5},
    )

    assert opened["mode"] == "change" and opened["decision"]["label"] == "eczema"
    assert changed.status_code == 200
    body = changed.json()
    assert (body["label"], body["replaces"], body["confidence"], body["seconds_spent"]) == (
        "atopic_dermatitis",
        first.pk,
        "unsure",
        6.5,
    )
    assert Review.objects.active().filter(image=image, reader=reviewer).count() == 1, "still one review"
    first.refresh_from_db()
    assert first.retracted_at is not None
    event = AuditEvent.objects.get(action="review_changed")
    assert (event.before["label"], event.after["label"], event.actor) == ("eczema", "atopic_dermatitis", reviewer)


def test_a_decided_image_can_no_longer_be_changed_and_says_only_decided(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    decide(reader=reviewer2, image_id=image.pk, label_code="bcc")  # a dispute

    response = post(api, reviewer, "/api/v1/reviews/change/", {"image": image.pk, "label": "bcc"})
    opened = post(api, reviewer, f"/api/v1/review-queue/{image.pk}/open/")

    assert (response.status_code, response.json()["code"]) == (400, "decided")
    assert "disput" not in response.content.decode(), "whether the readers agreed is not told"
    assert (opened.status_code, opened.json()["code"]) == (400, "decided")


def test_nobody_changes_a_decision_they_did_not_make(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")

    response = post(api, reviewer2, "/api/v1/reviews/change/", {"image": image.pk, "label": "bcc"})

    assert (response.status_code, response.json()["code"]) == (409, "not_yours")
    assert Review.objects.get().label.code == "eczema"


def test_the_history_page_lists_my_decisions_newest_first_and_searches_by_image(
    client, reviewer, reviewer2, image_factory
):
    old, new, others = image_factory(), image_factory(), image_factory()
    decide(reader=reviewer, image_id=old.pk, label_code="melanoma")
    decide(reader=reviewer, image_id=new.pk, cannot_judge=True, reason="blurry")
    decide(reader=reviewer2, image_id=others.pk, label_code="psoriasis_lichen_planus")
    client.force_login(reviewer)

    page = client.get("/review/history/").content.decode()
    found = client.get(f"/review/history/?image={old.pk}").content.decode()
    bad = client.get("/review/history/?image=abc")
    negative = client.get("/review/history/?image=-3")

    assert page.index(f'data-image="{new.pk}"') < page.index(f'data-image="{old.pk}"')
    assert "Melanoma" in page and "Cannot be judged: Blurry" in page
    assert f'data-image="{others.pk}"' not in page and "Psoriasis" not in page.split("Decisions")[1]
    assert f'data-image="{old.pk}"' in found and f'data-image="{new.pk}"' not in found
    assert f"/files/images/{old.pk}/thumbnail.jpg" in page
    assert bad.status_code == 400 and negative.status_code == 400
    client.force_login(reviewer2)
    assert f'data-image="{old.pk}"' not in client.get("/review/history/").content.decode()


def test_undo_is_refused_when_another_reader_has_the_image_open(api, reviewer, reviewer2, image_factory):
    image = image_factory()
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")
    give(reviewer2, image)

    response = post(api, reviewer, "/api/v1/reviews/undo/")

    assert (response.status_code, response.json()["code"]) == (409, "held_by_other")
    assert Review.objects.active().filter(reader=reviewer).count() == 1, "the review stays as it was"


def test_undo_gives_the_image_back_with_what_the_screen_needs(api, reviewer, image_factory):
    image = image_factory(metadata={"age": 61, "sex": "male", "dx": "mel"})
    decide(reader=reviewer, image_id=image.pk, label_code="eczema")

    body = post(api, reviewer, "/api/v1/reviews/undo/").json()

    assert body["item"]["image"] == image.pk
    assert body["item"]["full_image_url"].endswith(f"/files/images/{image.pk}/full.jpg")
    assert [entry["key"] for entry in body["item"]["clinical"]] == ["age", "sex"]


def test_the_review_page_refuses_a_bad_image_to_open(client, reviewer):
    client.force_login(reviewer)

    assert client.get("/review/?image=x").status_code == 400
    assert client.get("/review/?image=0").status_code == 400
    assert 'data-open-image="12"' in client.get("/review/?image=12").content.decode()
