"""Inter-reader agreement and reader pace, for curators.

Cohen's kappa (scikit-learn) per reader pair and Fleiss' kappa (statsmodels)
over images with the same number of readers, each with a 95 % percentile
bootstrap interval over images; kappa per class (one class against the rest,
Fleiss' category kappa); specific agreement per class; the reader-vs-reader
confusion matrix; and each reader's median seconds per image.

The bootstrap is written here rather than taken from scipy.stats.bootstrap:
with few images some resamples hold one category only, where kappa is
undefined, and scipy then answers NaN for the whole interval; here those
resamples are dropped (and counted). Resamples are drawn as multinomial
weights over images, so a resample costs one matrix product, not a table
build.
"""

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from curation.models import LabelClass
from labeling.models import Confidence, Review

CANNOT_JUDGE = "cannot_judge"
# Below this many double-read images the intervals are wide and the page says so.
FEW_DOUBLE_READ = 30
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE_FILTERS = {
    "all": "all images",
    "sure": "images every reader was sure of",
    "unsure": "images a reader was unsure of",
}


@dataclass
class AgreementReport:
    categories: list[str]
    category_names: list[str] = field(default_factory=list)
    confidence: str = "all"
    pairs: list[dict] = field(default_factory=list)
    fleiss: dict | None = None
    per_class: list[dict] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    readers: list[dict] = field(default_factory=list)
    images_with_two_or_more: int = 0

    @property
    def too_few(self) -> bool:
        return self.images_with_two_or_more < FEW_DOUBLE_READ


def _defined(value: float) -> float | None:
    """Kappa is 0 / 0 when every rating falls in one category: undefined, not a number to print."""
    return None if math.isnan(value) else value


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    import warnings

    from sklearn.metrics import cohen_kappa_score  # heavy: loaded on the agreement page only

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the undefined case is answered with None
        return _defined(float(cohen_kappa_score(first, second)))


def _count_table(ratings: list[list[str]], categories: list[str]):
    import numpy as np

    index = {category: i for i, category in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)), dtype=int)
    for row, item in enumerate(ratings):
        for rating in item:
            table[row, index[rating]] += 1
    return table


def fleiss_kappa_of(ratings: list[list[str]], categories: list[str]) -> float | None:
    """Fleiss' kappa of items each rated by the same number of raters."""
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa

    with np.errstate(divide="ignore", invalid="ignore"):
        return _defined(float(fleiss_kappa(_count_table(ratings, categories), method="fleiss")))


def _bootstrap_weights(items: int, *, resamples: int, seed: int, batch: int = 200):
    """Batches of resampling weights: row r says how often each item is drawn in resample r."""
    import numpy as np

    rng = np.random.default_rng(seed)
    uniform = np.full(items, 1 / items)
    for start in range(0, resamples, batch):
        yield rng.multinomial(items, uniform, size=min(batch, resamples - start)).astype(float)


def _interval(values, confidence_level: float = 0.95) -> tuple[float, float] | None:
    import numpy as np

    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1 - confidence_level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _cohen_from_cells(cells, categories: int):
    """Cohen's kappa for each row of `cells` (B × K² counts of (first, second) category pairs)."""
    import numpy as np

    table = cells.reshape(-1, categories, categories)
    total = table.sum(axis=(1, 2))
    observed = np.trace(table, axis1=1, axis2=2) / total
    expected = (table.sum(axis=2) * table.sum(axis=1)).sum(axis=1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def cohen_kappa_interval(
    first: list[str], second: list[str], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of Cohen's kappa, resampling the items (pairs of ratings)."""
    import numpy as np

    categories = sorted(set(first) | set(second))
    index = {category: i for i, category in enumerate(categories)}
    k = len(categories)
    cells = np.zeros((len(first), k * k))
    cells[np.arange(len(first)), [index[a] * k + index[b] for a, b in zip(first, second, strict=True)]] = 1
    kappas = [_cohen_from_cells(w @ cells, k) for w in _bootstrap_weights(len(first), resamples=resamples, seed=seed)]
    return _interval(np.concatenate(kappas))


def _fleiss_from_weights(weights, table):
    """Fleiss' kappa for each row of `weights` over the items of `table` (N × K counts, m raters each)."""
    import numpy as np

    raters = table.sum(axis=1)[0]
    items = weights.sum(axis=1)
    agreement_per_item = ((table**2).sum(axis=1) - raters) / (raters * (raters - 1))
    observed = weights @ agreement_per_item / items
    shares = weights @ table / (items[:, None] * raters)
    expected = (shares**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def fleiss_kappa_interval(
    table, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of Fleiss' kappa, resampling the items (rows of `table`)."""
    import numpy as np

    table = np.asarray(table, dtype=float)
    kappas = [_fleiss_from_weights(w, table) for w in _bootstrap_weights(len(table), resamples=resamples, seed=seed)]
    return _interval(np.concatenate(kappas))


def category_kappas(table) -> list[float | None]:
    """Kappa per category, one against the rest (Fleiss' kappa of the two-column table [c, not c])."""
    import numpy as np

    table = np.asarray(table, dtype=float)
    raters = table.sum(axis=1)[0]
    result = []
    for column in range(table.shape[1]):
        binary = np.stack([table[:, column], raters - table[:, column]], axis=1)
        kappa = _fleiss_from_weights(np.ones((1, len(table))), binary)[0]
        result.append(float(kappa) if np.isfinite(kappa) else None)
    return result


def _decision(review: Review) -> str:
    return review.label.code if review.label_id else CANNOT_JUDGE


def _keep(reviews: list[Review], confidence: str) -> bool:
    unsure = any(review.confidence == Confidence.UNSURE for review in reviews)
    return {"all": True, "sure": not unsure, "unsure": unsure}[confidence]


def agreement_report(*, min_overlap: int = 10, confidence: str = "all") -> AgreementReport:
    """Agreement over images read by two or more readers; `confidence` keeps all images, those every
    reader was sure of, or those some reader was unsure of."""
    import numpy as np

    if confidence not in CONFIDENCE_FILTERS:
        raise ValueError(f"confidence is one of {', '.join(CONFIDENCE_FILTERS)}")
    classes = list(LabelClass.objects.order_by("index").values_list("code", "name"))
    categories = [code for code, _ in classes] + [CANNOT_JUDGE]
    report = AgreementReport(categories=categories, category_names=[name for _, name in classes] + ["Cannot be judged"])
    report.confidence = confidence
    reviews = list(Review.objects.active().select_related("label", "reader").order_by("created_at"))
    per_image: dict[int, list[Review]] = defaultdict(list)
    for review in reviews:
        per_image[review.image_id].append(review)
    multi = {
        image: {review.reader.username: _decision(review) for review in mine}
        for image, mine in per_image.items()
        if len(mine) >= 2 and _keep(mine, confidence)
    }
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
        enough = len(labels_a) >= min_overlap
        report.pairs.append(
            {
                "readers": (reader_a, reader_b),
                "overlap": len(labels_a),
                "observed": agreed / len(labels_a),
                "kappa": cohen_kappa(labels_a, labels_b) if enough else None,
                "interval": cohen_kappa_interval(labels_a, labels_b) if enough else None,
            }
        )

    rater_counts = Counter(len(readers) for readers in multi.values())
    kappa_per_class: list[float | None] = [None] * len(categories)
    if rater_counts:
        raters, _ = rater_counts.most_common(1)[0]
        items = [list(readers.values()) for readers in multi.values() if len(readers) == raters]
        table = _count_table(items, categories)
        enough = len(items) >= 2
        report.fleiss = {
            "kappa": fleiss_kappa_of(items, categories) if enough else None,
            "interval": fleiss_kappa_interval(table) if enough else None,
            "images": len(items),
            "readers_per_image": raters,
        }
        if enough:
            kappa_per_class = category_kappas(table)

    for i, (category, name) in enumerate(zip(categories, report.category_names, strict=True)):
        both = confusion[i, i]
        either = confusion[i, :].sum() + confusion[:, i].sum()
        report.per_class.append(
            {
                "code": category,
                "name": name,
                "ratings": int(confusion[i, :].sum()),
                # Specific agreement: of the ratings in this class, the share matched by the other reader.
                "specific_agreement": float(2 * both / either) if either else None,
                "kappa": kappa_per_class[i],
            }
        )
    report.readers = _pace(reviews)
    return report


def _pace(reviews: list[Review]) -> list[dict]:
    """Per reader: reviews, median seconds from display to decision, cannot-judge and unsure rates.

    The pace is the median of the times the review screen measured, not reviews
    over wall-clock time: imported or simulated reviews carry no sittings to
    measure, and a median is not thrown by one image left open over lunch.
    """
    per_reader: dict[str, list[Review]] = defaultdict(list)
    for review in reviews:
        per_reader[review.reader.username].append(review)
    rows = []
    for reader, mine in sorted(per_reader.items()):
        seconds = [r.seconds_spent for r in mine if r.seconds_spent is not None]
        rows.append(
            {
                "reader": reader,
                "reviews": len(mine),
                "median_seconds": statistics.median(seconds) if seconds else None,
                "cannot_judge_rate": sum(r.label_id is None for r in mine) / len(mine),
                "unsure_rate": sum(r.confidence == Confidence.UNSURE for r in mine) / len(mine),
            }
        )
    return rows
