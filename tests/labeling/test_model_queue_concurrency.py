"""Readers asking for work at the same moment in the model's orders, on PostgreSQL, through real connections."""

import pytest
from django.db import connection

from labeling.models import ReviewLease
from labeling.services.queue import review_queue_next
from tests.assisting import ImageScoreFactory, ModelVersionFactory
from tests.conftest import make_user
from tests.factories import ImageFactory
from tests.labeling.test_concurrency import at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


@pytest.mark.parametrize("order", ["uncertainty", "disagreement"])
def test_readers_asking_together_in_a_model_order_never_share_an_image_and_all_are_leased(settings, order):
    settings.DERMCURATE_QUEUE_ORDER = order
    version = ModelVersionFactory(production=True)
    readers = [make_user(f"m{i}", "reviewer") for i in range(4)]
    images = ImageFactory.create_batch(8, source_code="eczema")
    for n, image in enumerate(images):
        # Every image scored, half of them siblings of another, so the diversity rule passes some over.
        ImageScoreFactory(model_version=version, image=image, calibrated=[0.05, 0.9 - n / 100, 0.05 + n / 100])
        image.metadata = {"lesion_id": f"L{n // 2}"}
        image.save(update_fields=["metadata"])

    results = at_once(*[(lambda reader=reader: review_queue_next(reader=reader, count=2)) for reader in readers])

    leased = [lease.image_id for leases in results for lease in leases]
    assert len(leased) == 8 and len(set(leased)) == 8, results
    assert ReviewLease.objects.count() == 8
