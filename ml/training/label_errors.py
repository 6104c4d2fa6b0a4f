"""Suspected label errors by confident learning (cleanlab), from out-of-fold probabilities.

cleanlab is imported only when issues are ranked (the worker, at the end of a cross-validation run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class SuspectedLabelError:
    index: int  # into the items given
    score: float  # cleanlab's label quality score, 0..1: the lower, the likelier the label is wrong
    suggested: int  # the likeliest class other than the given one


RANKING_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
DEFAULT_RANKING = "self_confidence"


def find_label_errors(
    labels: Sequence[int], probabilities: np.ndarray, *, method: str = DEFAULT_RANKING
) -> list[SuspectedLabelError]:
    """The items whose given label looks wrong, worst first.

    ``find_label_issues`` (prune by noise rate) decides which items are issues; they are ranked by cleanlab's label
    quality score of ``method`` (self-confidence: the probability of the given label).
    """
    if method not in RANKING_METHODS:
        raise ValueError(f"Unknown ranking {method!r}; known: {', '.join(RANKING_METHODS)}.")
    import numpy as np
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not len(labels):
        return []
    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by=method)
    scores = get_label_quality_scores(labels, probabilities, method=method)
    others = probabilities.copy()
    others[np.arange(len(labels)), labels] = -1.0
    suggested = others.argmax(axis=1)
    return [
        SuspectedLabelError(index=int(index), score=float(scores[index]), suggested=int(suggested[index]))
        for index in ranked
    ]


def given_label_ranking(labels: Sequence[int], probabilities: np.ndarray) -> list[int]:
    """The baseline: every item, lowest probability of its given label first."""
    import numpy as np

    labels = np.asarray(labels, dtype=np.int64)
    given = np.asarray(probabilities)[np.arange(len(labels)), labels]
    return [int(index) for index in np.argsort(given, kind="stable")]
