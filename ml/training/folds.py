"""Grouped, stratified folds for cross-validation: images tied together (duplicates, one lesion, one patient) share a
fold, so that no model is judged on a near copy of what it was trained on.

Pure Python plus scikit-learn (``StratifiedGroupKFold``), imported only when folds are made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

MAX_FOLDS = 20


@dataclass(frozen=True)
class FoldPlan:
    """One fold, as indexes into the items: the model trains on ``train``, stops early and is calibrated on
    ``val``, and predicts ``held_out`` (the fold), which it never saw."""

    fold: int
    train: list[int]
    val: list[int]
    held_out: list[int]


def group_units(group_keys: Sequence[Sequence[str]]) -> list[int]:
    """A unit number per item: items that share any key (transitively) get the same one, numbered by first item."""
    parent: dict[object, object] = {}

    def find(node):
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for item, keys in enumerate(group_keys):
        for key in keys:
            root_item, root_key = find(("item", item)), find(("key", key))
            if root_item != root_key:
                parent[root_key] = root_item
    numbers: dict[object, int] = {}
    return [numbers.setdefault(find(("item", item)), len(numbers)) for item in range(len(group_keys))]


def fold_refusals(
    labels: Sequence[int], group_keys: Sequence[Sequence[str]], k: int, class_names: Sequence[str]
) -> list[str]:
    """Why these items cannot be split into k folds; empty when they can."""
    if not 2 <= k <= MAX_FOLDS:
        return [f"The number of folds must lie between 2 and {MAX_FOLDS}; got {k}."]
    counts = Counter(labels)
    listed = ", ".join(f"{class_names[label]} {counts[label]}" for label in sorted(counts))
    thin = [f"{class_names[label]} ({counts[label]})" for label in sorted(counts) if counts[label] < k]
    if thin:
        return [
            f"Cross-validation with {k} folds needs at least {k} train and val images of every class; too few: "
            f"{', '.join(thin)}. Counts per class: {listed}."
        ]
    units = len(set(group_units(group_keys)))
    if units < k:
        return [
            f"The train and val images form only {units} groups (duplicates, lesions and patients stay together), "
            f"fewer than the {k} folds."
        ]
    return []


def plan_folds(
    labels: Sequence[int], splits: Sequence[str], group_keys: Sequence[Sequence[str]], *, k: int, seed: int
) -> list[FoldPlan]:
    """k grouped, stratified folds of items whose split is "train" or "val".

    Each fold is held out once; its model trains on the other folds' train items and uses their val items to stop
    early and to fit its temperature. Raises ValueError when some fold leaves no val or no train item outside it.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    units = group_units(group_keys)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    plans = []
    for fold, (rest, held_out) in enumerate(splitter.split(list(range(len(labels))), list(labels), units)):
        train = [int(i) for i in rest if splits[i] == "train"]
        val = [int(i) for i in rest if splits[i] == "val"]
        if not train or not val:
            missing = "train" if not train else "val"
            raise ValueError(
                f"Fold {fold + 1} of {k} leaves no {missing} image outside it to train on; use fewer folds or a "
                f"snapshot with more {missing} images."
            )
        plans.append(FoldPlan(fold=fold, train=train, val=val, held_out=sorted(int(i) for i in held_out)))
    return plans
