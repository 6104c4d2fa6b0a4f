from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Review
from labeling.selectors.agreement import agreement_report, cohen_kappa, fleiss_kappa_of
from labeling.services.reviews import review_submit
from tests.conftest import make_user

CATEGORIES = ["a", "b", "c", "d", "e"]


def test_cohen_kappa_matches_the_worked_example():
    # Wikipedia's example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → po 0.7, pe 0.5, κ 0.4.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15

    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_fleiss_kappa_matches_the_worked_example():
    # Fleiss (1971) as given on Wikipedia: 10 subjects, 14 raters, 5 categories → κ ≈ 0.210.
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[category for category, n in zip(CATEGORIES, row, strict=True) for _ in range(n)] for row in counts]

    assert fleiss_kappa_of(ratings, CATEGORIES) == pytest.approx(0.210, abs=5e-4)


@pytest.mark.django_db
def test_report_on_real_reviews(image_factory):
    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    plan = [  # (ana, ben) per image
        ("eczema", "eczema"),
        ("eczema", "atopic_dermatitis"),
        ("melanoma", "melanoma"),
        ("melanoma", "melanocytic_nevi"),
        ("bcc", "bcc"),
        (None, None),
        ("eczema", "eczema"),
    ]
    for first, second in plan:
        image = image_factory()
        for reader, code in ((ana, first), (ben, second)):
            decision = {"label_code": code} if code else {"cannot_judge": True, "reason": "blurry"}
            review_submit(reader=reader, image_id=image.pk, seconds_spent=4.0 if reader is ana else 6.0, **decision)

    report = agreement_report(min_overlap=5)

    pair = report.pairs[0]
    assert pair["readers"] == ("ana", "ben") and pair["overlap"] == 7
    assert pair["observed"] == pytest.approx(5 / 7)
    decisions = [(a or "cannot_judge", b or "cannot_judge") for a, b in plan]
    assert pair["kappa"] == pytest.approx(cohen_kappa([a for a, _ in decisions], [b for _, b in decisions]))
    assert report.fleiss["images"] == 7 and report.fleiss["readers_per_image"] == 2
    eczema = report.categories.index("eczema")
    atopic = report.categories.index("atopic_dermatitis")
    assert report.confusion[eczema][eczema] == 4, "two agreeing pairs, counted both ways"
    assert report.confusion[eczema][atopic] == report.confusion[atopic][eczema] == 1
    per_class = {row["code"]: row for row in report.per_class}
    assert per_class["bcc"]["specific_agreement"] == 1.0
    assert per_class["eczema"]["specific_agreement"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    readers = {row["reader"]: row for row in report.readers}
    assert readers["ana"]["median_seconds"] == 4.0 and readers["ben"]["median_seconds"] == 6.0
    assert readers["ana"]["cannot_judge_rate"] == pytest.approx(1 / 7)


@pytest.mark.django_db
def test_reviews_per_hour_counts_sittings_not_idle_time(image_factory):
    ana = make_user("ana", "reviewer")
    start = timezone.now() - timedelta(days=1)
    for _ in range(10):
        review_submit(reader=ana, image_id=image_factory().pk, label_code="eczema", seconds_spent=10)
    # Two sittings of five reviews, one minute apart each, three hours between the sittings.
    for n, review in enumerate(Review.objects.order_by("pk")):
        offset = timedelta(minutes=n) if n < 5 else timedelta(hours=3, minutes=n)
        Review.objects.filter(pk=review.pk).update(created_at=start + offset)

    row = agreement_report().readers[0]

    hours = (4 * 60 + 10 + 4 * 60 + 10) / 3600  # 4 minutes + one review time, twice
    assert row["per_hour"] == pytest.approx(10 / hours)


@pytest.mark.django_db
def test_agreement_page_is_for_curators(client, curator, reviewer, image_factory):
    client.force_login(reviewer)
    assert client.get("/curation/agreement/").status_code == 403
    client.force_login(curator)

    page = client.get("/curation/agreement/").content.decode()

    assert "Fleiss" in page and "Cohen" in page and "confusion" in page
