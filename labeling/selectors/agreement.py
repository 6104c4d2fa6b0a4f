"""Inter-reader agreement and reader throughput, for curators.

Cohen's kappa (scikit-learn) per reader pair, Fleiss' kappa (statsmodels)
over images with the same number of readers, specific agreement per class,
the reader-vs-reader confusion matrix, and each reader's pace.
"""

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import combinations

from curation.models import LabelClass
from labeling.models import Review

CANNOT_JUDGE = "cannot_judge"
# Reviews further apart than this belong to different sittings when counting hours.
SESSION_GAP = timedelta(minutes=15)


@dataclass
class AgreementReport:
    categories: list[str]
    pairs: list[dict] = field(default_factory=list)
    fleiss: dict | None = None
    per_class: list[dict] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    readers: list[dict] = field(default_factory=list)
    images_with_two_or_more: int = 0


def cohen_kappa(first: list[str], second: list[str]) -> float:
    from sklearn.metrics import cohen_kappa_score  # heavy: loaded on the agreement page only

    return float(cohen_kappa_score(first, second))


def fleiss_kappa_of(ratings: list[list[str]], categories: list[str]) -> float:
    """Fleiss' kappa of items each rated by the same number of raters."""
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa

    index = {category: i for i, category in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)), dtype=int)
    for row, item in enumerate(ratings):
        for rating in item:
            table[row, index[rating]] += 1
    return float(fleiss_kappa(table, method="fleiss"))


def _decision(review: Review) -> str:
    return review.label.code if review.label_id else CANNOT_JUDGE


def agreement_report(*, min_overlap: int = 10) -> AgreementReport:
    import numpy as np

    categories = [*LabelClass.objects.order_by("index").values_list("code", flat=True), CANNOT_JUDGE]
    reviews = list(Review.objects.active().select_related("label", "reader").order_by("created_at"))
    report = AgreementReport(categories=categories)
    by_image: dict[int, dict[str, str]] = defaultdict(dict)
    for review in reviews:
        by_image[review.image_id][review.reader.username] = _decision(review)
    multi = {image: readers for image, readers in by_image.items() if len(readers) >= 2}
    report.images_with_two_or_more = len(multi)

    overlap: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    confusion = np.zeros((len(categories), len(categories)), dtype=int)
    position = {category: i for i, category in enumerate(categories)}
    for readers in multi.values():
        for (reader_a, label_a), (reader_b, label_b) in combinations(sorted(readers.items()), 2):
            overlap[(reader_a, reader_b)][0].append(label_a)
            overlap[(reader_a, reader_b)][1].append(label_b)
            # Both orders: the matrix is about reader pairs, not who came first.
            confusion[position[label_a], position[label_b]] += 1
            confusion[position[label_b], position[label_a]] += 1
    report.confusion = confusion.tolist()
    for (reader_a, reader_b), (labels_a, labels_b) in sorted(overlap.items()):
        agreed = sum(a == b for a, b in zip(labels_a, labels_b, strict=True))
        report.pairs.append(
            {
                "readers": (reader_a, reader_b),
                "overlap": len(labels_a),
                "observed": agreed / len(labels_a),
                "kappa": cohen_kappa(labels_a, labels_b) if len(labels_a) >= min_overlap else None,
            }
        )

    rater_counts = Counter(len(readers) for readers in multi.values())
    if rater_counts:
        raters, _ = rater_counts.most_common(1)[0]
        items = [list(readers.values()) for readers in multi.values() if len(readers) == raters]
        report.fleiss = {
            "kappa": fleiss_kappa_of(items, categories) if len(items) >= 2 else None,
            "images": len(items),
            "readers_per_image": raters,
        }

    for i, category in enumerate(categories):
        both = confusion[i, i]
        either = confusion[i, :].sum() + confusion[:, i].sum()
        report.per_class.append(
            {
                "code": category,
                "ratings": int(confusion[i, :].sum()),
                # Specific agreement: of the ratings in this class, the share matched by the other reader.
                "specific_agreement": float(2 * both / either) if either else None,
            }
        )
    report.readers = _throughput(reviews)
    return report


def _throughput(reviews: list[Review]) -> list[dict]:
    per_reader: dict[str, list[Review]] = defaultdict(list)
    for review in reviews:
        per_reader[review.reader.username].append(review)
    rows = []
    for reader, mine in sorted(per_reader.items()):
        seconds = [r.seconds_spent for r in mine if r.seconds_spent is not None]
        median_seconds = statistics.median(seconds) if seconds else None
        active = _active_hours(mine, median_seconds or 0)
        rows.append(
            {
                "reader": reader,
                "reviews": len(mine),
                "per_hour": len(mine) / active if active else None,
                "median_seconds": median_seconds,
                "cannot_judge_rate": sum(r.label_id is None for r in mine) / len(mine),
            }
        )
    return rows


def _active_hours(reviews: list[Review], median_seconds: float) -> float:
    """Sittings are runs of reviews less than SESSION_GAP apart; each lasts from its first
    to its last review, plus one typical review time."""
    total = timedelta()
    start = previous = None
    for review in reviews:
        if previous is None or review.created_at - previous > SESSION_GAP:
            if start is not None:
                total += previous - start + timedelta(seconds=median_seconds)
            start = review.created_at
        previous = review.created_at
    if start is not None:
        total += previous - start + timedelta(seconds=median_seconds)
    return total.total_seconds() / 3600
