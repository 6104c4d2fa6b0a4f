from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Review
from labeling.selectors.agreement import (
    agreement_report,
    category_kappas,
    cohen_kappa,
    cohen_kappa_interval,
    fleiss_kappa_interval,
    fleiss_kappa_of,
)
from tests.conftest import make_user
from tests.reviewing import decide

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
            decide(reader=reader, image_id=image.pk, seconds_spent=4.0 if reader is ana else 6.0, **decision)

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
def test_pace_is_the_median_seconds_per_image_whatever_the_clock_says(image_factory):
    # Simulated or imported reviews all carry the same moment: a pace from wall-clock time
    # would read tens of thousands per hour. The median of the measured times does not care.
    ana = make_user("ana", "reviewer")
    for seconds in (3.0, 5.0, 4.0, 60.0, 4.5):
        decide(reader=ana, image_id=image_factory().pk, label_code="eczema", seconds_spent=seconds)
    Review.objects.update(created_at=timezone.now() - timedelta(days=1))

    row = agreement_report().readers[0]

    assert row["median_seconds"] == 4.5
    assert "per_hour" not in row


# --- intervals ------------------------------------------------------------------------------------------------------


def test_cohen_kappa_interval_matches_the_worked_example():
    # The same example: the large-sample standard error sqrt(po(1-po) / (n (1-pe)^2)) = sqrt(.21 / 12.5) = 0.1296,
    # so the normal 95 % interval is 0.4 ± 0.254 = [0.146, 0.654]. A percentile bootstrap over the 50 items agrees
    # within a few hundredths.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15

    low, high = cohen_kappa_interval(first, second, resamples=4000, seed=1)

    assert low == pytest.approx(0.146, abs=0.04)
    assert high == pytest.approx(0.654, abs=0.04)
    assert low < 0.4 < high
    assert cohen_kappa_interval(first, second, resamples=4000, seed=1) == (low, high), (
        "the same seed, the same interval"
    )


def fleiss_table():
    return [
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


def test_fleiss_kappa_interval_matches_the_jackknife_on_the_worked_example():
    # Fleiss (1971): κ = 0.210. Its leave-one-subject-out (jackknife) standard error, worked out below from the
    # definition, gives the normal interval the bootstrap must agree with.
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa

    table = np.array(fleiss_table())
    kappa = fleiss_kappa(table)
    leave_one_out = np.array([fleiss_kappa(np.delete(table, i, axis=0)) for i in range(len(table))])
    n = len(table)
    jackknife_se = np.sqrt((n - 1) / n * ((leave_one_out - leave_one_out.mean()) ** 2).sum())

    low, high = fleiss_kappa_interval(table, resamples=4000, seed=1)

    assert kappa == pytest.approx(0.210, abs=5e-4)
    assert low < kappa < high
    assert (high - low) / 2 == pytest.approx(1.96 * jackknife_se, rel=0.25)


def test_an_undefined_resample_is_dropped_not_the_whole_interval():
    # Two items only: some resamples hold one category, where kappa is 0 / 0.
    interval = cohen_kappa_interval(["a", "b"], ["a", "b"], resamples=200, seed=0)

    assert interval == (1.0, 1.0)


def test_kappa_per_class_is_fleiss_kappa_of_that_class_against_the_rest():
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa

    table = np.array(fleiss_table())
    per_class = category_kappas(table)

    for column, kappa in enumerate(per_class):
        binary = np.stack([table[:, column], 14 - table[:, column]], axis=1)
        assert kappa == pytest.approx(fleiss_kappa(binary))
    # Class 0 by Fleiss' formula, by hand: 1 - Σ n(m - n) / (N m (m - 1) p q) with Σ n(m - n) = 178, p = 20/140.
    assert per_class[0] == pytest.approx(1 - 178 / (10 * 14 * 13 * (20 / 140) * (120 / 140)))


@pytest.mark.django_db
def test_report_carries_intervals_per_class_kappa_and_warns_under_thirty_images(image_factory):
    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    for n in range(12):
        image = image_factory()
        decide(reader=ana, image_id=image.pk, label_code="eczema" if n % 2 else "melanoma")
        decide(reader=ben, image_id=image.pk, label_code="eczema" if n % 3 else "melanoma")

    report = agreement_report(min_overlap=5)

    low, high = report.pairs[0]["interval"]
    assert low <= report.pairs[0]["kappa"] <= high
    assert report.fleiss["interval"][0] <= report.fleiss["kappa"] <= report.fleiss["interval"][1]
    per_class = {row["code"]: row for row in report.per_class}
    assert per_class["eczema"]["kappa"] is not None and per_class["bcc"]["kappa"] is None
    assert per_class["eczema"]["name"] == "Eczema"
    assert report.too_few, "12 double-read images are fewer than 30"


@pytest.mark.django_db
def test_agreement_can_be_read_for_sure_calls_only(image_factory):
    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    sure, hesitant = image_factory(), image_factory()
    decide(reader=ana, image_id=sure.pk, label_code="bcc")
    decide(reader=ben, image_id=sure.pk, label_code="bcc")
    decide(reader=ana, image_id=hesitant.pk, label_code="melanoma", confidence="unsure")
    decide(reader=ben, image_id=hesitant.pk, label_code="melanocytic_nevi")

    everything = agreement_report(min_overlap=2)
    only_sure = agreement_report(min_overlap=2, confidence="sure")
    only_unsure = agreement_report(min_overlap=2, confidence="unsure")

    assert [p["overlap"] for p in everything.pairs] == [2]
    assert [(p["overlap"], p["observed"]) for p in only_sure.pairs] == [(1, 1.0)]
    assert [(p["overlap"], p["observed"]) for p in only_unsure.pairs] == [(1, 0.0)]
    assert {row["reader"]: row["unsure_rate"] for row in everything.readers} == {"ana": 0.5, "ben": 0.0}


@pytest.mark.django_db
def test_agreement_page_is_for_curators(client, curator, reviewer, image_factory):
    client.force_login(reviewer)
    assert client.get("/curation/agreement/").status_code == 403
    client.force_login(curator)

    page = client.get("/curation/agreement/").content.decode()

    assert "Fleiss" in page and "Cohen" in page and "confusion" in page


@pytest.mark.django_db
def test_agreement_page_shows_intervals_names_and_the_warning_and_refuses_bad_filters(client, curator, image_factory):
    ana, ben = make_user("ana", "reviewer"), make_user("ben", "reviewer")
    for _ in range(3):
        image = image_factory()
        decide(reader=ana, image_id=image.pk, label_code="psoriasis_lichen_planus", seconds_spent=5)
        decide(reader=ben, image_id=image.pk, label_code="psoriasis_lichen_planus", seconds_spent=7)
    client.force_login(curator)

    page = client.get("/curation/agreement/?min_overlap=2&confidence=sure").content.decode()
    bad_overlap = client.get("/curation/agreement/?min_overlap=abc")
    too_small = client.get("/curation/agreement/?min_overlap=1")
    bad_confidence = client.get("/curation/agreement/?confidence=maybe")

    assert "Psoriasis, lichen planus and related diseases" in page and "psoriasis_lichen_planus" not in page
    assert "Fewer than 30 images were read twice" in page
    assert "95 % CI" in page and "Median seconds per image" in page and "Reviews per hour" not in page
    for response, field in ((bad_overlap, "min_overlap"), (too_small, "min_overlap"), (bad_confidence, "confidence")):
        assert response.status_code == 400
        assert field in response.content.decode()
