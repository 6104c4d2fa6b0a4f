"""Readers submitting at the same moment, on PostgreSQL, through real concurrent connections."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from core.models import AuditEvent
from curation.models import Image
from labeling.models import Review, ReviewLease
from labeling.services.queue import review_queue_next
from labeling.services.reviews import review_change, review_submit
from tests.conftest import make_user
from tests.factories import ImageFactory
from tests.reviewing import decide, give

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL"),
]


def at_once(*calls):
    """Run the calls in threads released together; returns each call's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # the test inspects it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("round_", range(5))
def test_a_change_and_the_other_readers_decision_together_decide_once_and_consistently(round_):
    """The first reader changes their decision while the second decides: the row lock orders them, and
    consensus sees the decisions as they end up (or the change is refused because the image is decided)."""
    first, second = make_user(f"r{round_}a", "reviewer"), make_user(f"r{round_}b", "reviewer")
    image = ImageFactory()
    decide(reader=first, image_id=image.pk, label_code="melanoma")
    give(second, image)

    change, review = at_once(
        lambda: review_change(reader=first, image_id=image.pk, label_code="melanocytic_nevi"),
        lambda: review_submit(reader=second, image_id=image.pk, label_code="melanocytic_nevi"),
    )

    assert isinstance(review, Review), review
    image.refresh_from_db()
    active = sorted(Review.objects.active().filter(image=image).values_list("label__code", flat=True))
    if isinstance(change, Review):  # the change went first: both readers say nevus
        assert active == ["melanocytic_nevi", "melanocytic_nevi"] and image.status == "labeled"
    else:  # the decision went first: the image was decided on the first reading, and the change refused
        assert isinstance(change, ValidationError) and "already decided" in str(change)
        assert active == ["melanocytic_nevi", "melanoma"] and image.status == "disputed"
    consensus = AuditEvent.objects.filter(image_id=image.pk, action__startswith="consensus_")
    assert consensus.count() == 1


def test_a_double_submit_creates_one_review():
    reader = make_user("double", "reviewer")
    image = ImageFactory()
    give(reader, image)

    results = at_once(
        *[(lambda: review_submit(reader=reader, image_id=image.pk, label_code="eczema")) for _ in range(4)]
    )

    assert sum(isinstance(result, Review) for result in results) == 1
    refused = [r for r in results if not isinstance(r, Review)]
    # The first decision used up the lease: the others are refused, none stored.
    assert all(isinstance(r, ValidationError) and r.code in ("not_in_queue", "already_reviewed") for r in refused)
    assert Review.objects.filter(image=image).count() == 1


def test_readers_asking_for_work_together_never_share_an_image():
    readers = [make_user(f"q{i}", "reviewer") for i in range(4)]
    ImageFactory.create_batch(8)

    results = at_once(*[(lambda reader=reader: review_queue_next(reader=reader, count=2)) for reader in readers])

    leased = [lease.image_id for leases in results for lease in leases]
    assert len(leased) == 8 and len(set(leased)) == 8, results
    assert ReviewLease.objects.count() == 8
    assert Image.objects.count() == 8
