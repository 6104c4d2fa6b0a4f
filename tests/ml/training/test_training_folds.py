"""Grouped, stratified cross-validation folds and the label-error ranking: pure functions, no Django, no network."""

import random
from collections import Counter

import numpy as np
import pytest

from ml.training.folds import MAX_FOLDS, fold_refusals, group_units, plan_folds
from ml.training.label_errors import find_label_errors, given_label_ranking


def test_items_sharing_any_key_directly_or_through_others_form_one_unit():
    keys = [["group:1"], ["group:1", "lesion:a"], ["lesion:a"], [], ["patient:7"], ["patient:7", "group:2"], []]

    units = group_units(keys)

    assert units[0] == units[1] == units[2]
    assert units[4] == units[5]
    assert len({units[0], units[3], units[4], units[6]}) == 4, "lone items are units of their own"


def items(per_class: int = 12, classes: int = 3, seed: int = 0):
    """Labels, splits (3 train : 1 val) and keys with duplicate groups, lesions and patients across them."""
    rng = random.Random(seed)
    labels, splits, keys = [], [], []
    for label in range(classes):
        for n in range(per_class):
            labels.append(label)
            splits.append("val" if n % 4 == 3 else "train")
            own = []
            if n % 5 == 0:
                own.append(f"lesion:{label}:{n // 10}")
            if rng.random() < 0.2:
                own.append(f"patient:{rng.randrange(6)}")
            keys.append(own)
    return labels, splits, keys


@pytest.mark.parametrize("k", [2, 3, 5])
def test_every_item_is_held_out_once_never_trained_on_by_its_fold_and_groups_never_straddle_folds(k):
    labels, splits, keys = items()

    plans = plan_folds(labels, splits, keys, k=k, seed=3)

    assert len(plans) == k
    held = [i for plan in plans for i in plan.held_out]
    assert sorted(held) == list(range(len(labels))), "each item held out exactly once"
    for plan in plans:
        assert not set(plan.held_out) & (set(plan.train) | set(plan.val))
        assert set(plan.train) | set(plan.val) | set(plan.held_out) == set(range(len(labels)))
        assert all(splits[i] == "train" for i in plan.train) and all(splits[i] == "val" for i in plan.val)
    fold_of = {i: plan.fold for plan in plans for i in plan.held_out}
    units = group_units(keys)
    for unit in set(units):
        assert len({fold_of[i] for i, u in enumerate(units) if u == unit}) == 1, f"unit {unit} straddles folds"
    # Stratified: every fold holds out some images of every class.
    for plan in plans:
        assert set(Counter(labels[i] for i in plan.held_out)) == {0, 1, 2}


def test_folds_are_the_same_for_the_same_seed_and_differ_for_another():
    labels, splits, keys = items()

    first = plan_folds(labels, splits, keys, k=3, seed=1)
    again = plan_folds(labels, splits, keys, k=3, seed=1)
    other = plan_folds(labels, splits, keys, k=3, seed=2)

    assert [p.held_out for p in first] == [p.held_out for p in again]
    assert [p.held_out for p in first] != [p.held_out for p in other]


def test_too_few_images_of_a_class_or_too_few_groups_or_a_bad_k_are_refused_with_the_counts():
    names = ["eczema", "melanoma", "nevi"]
    labels = [0] * 6 + [1] * 2 + [2] * 5

    thin = fold_refusals(labels, [[]] * len(labels), 3, names)
    grouped = fold_refusals([0, 0, 1, 1], [["group:1"], ["group:1"], ["group:1"], ["group:1"]], 2, names)

    assert len(thin) == 1
    assert "at least 3" in thin[0] and "melanoma (2)" in thin[0]
    assert "eczema 6, melanoma 2, nevi 5" in thin[0]
    assert "only 1 groups" in grouped[0]
    assert fold_refusals(labels, [[]] * len(labels), 2, names) == []
    assert "between 2 and" in fold_refusals(labels, [[]] * len(labels), 1, names)[0]
    assert "between 2 and" in fold_refusals(labels, [[]] * len(labels), MAX_FOLDS + 1, names)[0]


def test_a_fold_that_leaves_no_val_image_outside_it_is_refused():
    labels = [0, 0, 1, 1, 0, 1]
    splits = ["train", "train", "train", "train", "val", "val"]
    keys = [[], [], [], [], ["group:v"], ["group:v"]]  # both val images in one unit: one fold holds them all

    with pytest.raises(ValueError, match="leaves no val image outside it"):
        plan_folds(labels, splits, keys, k=2, seed=0)


def noisy_probabilities(seed: int = 0, n: int = 300, classes: int = 4, flip: float = 0.1):
    """A decent model's out-of-fold probabilities of the true classes, and given labels with 10 % flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), truth] += 3.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flipped = rng.choice(n, int(flip * n), replace=False)
    given[flipped] = (truth[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return given, probabilities, set(flipped.tolist()), truth


def test_confident_learning_ranks_flipped_labels_first_and_suggests_another_class():
    given, probabilities, flipped, truth = noisy_probabilities()

    found = find_label_errors(given, probabilities)

    top = [issue.index for issue in found[: len(flipped)]]
    precision = len(set(top) & flipped) / len(top)
    assert precision >= 0.8, precision
    assert all(issue.suggested != given[issue.index] for issue in found)
    assert [issue.score for issue in found] == sorted(issue.score for issue in found), "worst first"
    right = [issue for issue in found if issue.index in flipped]
    assert np.mean([issue.suggested == truth[issue.index] for issue in right]) >= 0.8
    assert given_label_ranking(given, probabilities)[0] in flipped
    assert find_label_errors([], np.zeros((0, 4))) == []
    with pytest.raises(ValueError, match="Unknown ranking"):
        find_label_errors(given, probabilities, method="vibes")
