"""Readers submitting at the same moment, on PostgreSQL, through real concurrent connections."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from core.models import AuditEvent
from curation.models import Image
from labeling.models import Review, ReviewLease
from labeling.services.queue import review_queue_next
from labeling.services.reviews import review_submit
from tests.conftest import make_user
from tests.factories import ImageFactory

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
def test_two_readers_submitting_together_lose_no_review_and_decide_once(round_):
    readers = [make_user(f"r{round_}a", "reviewer"), make_user(f"r{round_}b", "reviewer")]
    image = ImageFactory()

    results = at_once(
        *[
            (lambda reader=reader: review_submit(reader=reader, image_id=image.pk, label_code="melanoma"))
            for reader in readers
        ]
    )

    assert all(isinstance(result, Review) for result in results), results
    assert Review.objects.filter(image=image).count() == 2
    image.refresh_from_db()
    assert image.status == "labeled"
    assert AuditEvent.objects.filter(image_id=image.pk, action="consensus_labeled").count() == 1


def test_a_double_submit_creates_one_review():
    reader = make_user("double", "reviewer")
    image = ImageFactory()

    results = at_once(
        *[(lambda: review_submit(reader=reader, image_id=image.pk, label_code="eczema")) for _ in range(4)]
    )

    assert sum(isinstance(result, Review) for result in results) == 1
    assert all("already reviewed" in str(r) for r in results if isinstance(r, ValidationError)), results
    assert Review.objects.filter(image=image).count() == 1


def test_readers_asking_for_work_together_never_share_an_image():
    readers = [make_user(f"q{i}", "reviewer") for i in range(4)]
    ImageFactory.create_batch(8)

    results = at_once(*[(lambda reader=reader: review_queue_next(reader=reader, count=2)) for reader in readers])

    leased = [lease.image_id for leases in results for lease in leases]
    assert len(leased) == 8 and len(set(leased)) == 8, results
    assert ReviewLease.objects.count() == 8
    assert Image.objects.count() == 8
