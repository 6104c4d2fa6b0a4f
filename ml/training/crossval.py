"""Cross-validation: one model per fold, each predicting the fold it never saw (out-of-fold probabilities).

What confident learning needs to find label errors: a probability for every item from a model not trained on it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ml.training.calibrate import apply_temperature
from ml.training.config import TrainingConfig
from ml.training.folds import plan_folds

if TYPE_CHECKING:
    import numpy as np

    from ml.training.runtime import Runtime


@dataclass(frozen=True)
class CrossValItem:
    path: str
    label: int  # index into class_names
    split: str  # "train" or "val": which role it plays inside the other folds' trainings
    group_keys: tuple[str, ...] = ()  # what ties it to other items (duplicate group, lesion, patient)


@dataclass
class CrossValResult:
    folds: list[int]  # the fold each item was held out in
    probabilities: np.ndarray  # uncalibrated, out of fold: rows follow the items, columns class_names
    calibrated: np.ndarray  # the same, each fold's temperature applied
    fold_reports: list[dict] = field(default_factory=list)  # per fold: sizes, temperature, held-out metrics


def cross_validate(
    config: TrainingConfig,
    *,
    items: Sequence[CrossValItem],
    k: int,
    class_names: Sequence[str],
    output_dir: Path,
    base_weights: str = "imagenet",
    on_epoch_end: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    runtime: Runtime | None = None,
) -> CrossValResult:
    """Train k models (``train``, the same recipe as a normal run) on grouped, stratified folds of the items.

    Epoch reports passed to ``on_epoch_end`` carry ``fold`` (1..k). Each fold's files are removed once its
    probabilities are kept. Raises what ``train`` raises, and ValueError for folds that cannot be made.
    """
    import numpy as np

    from ml.training.fit import train

    plans = plan_folds(
        [item.label for item in items],
        [item.split for item in items],
        [item.group_keys for item in items],
        k=k,
        seed=config.seed,
    )
    output_dir = Path(output_dir)
    probabilities = np.zeros((len(items), len(class_names)), dtype=np.float64)
    calibrated = np.zeros_like(probabilities)
    folds = [-1] * len(items)
    reports = []
    for plan in plans:

        def report(epoch: dict, fold: int = plan.fold) -> None:
            if on_epoch_end is not None:
                on_epoch_end({**epoch, "fold": fold + 1, "folds": k})

        fold_dir = output_dir / f"fold-{plan.fold + 1}"
        result = train(
            config,
            train_items=[(items[i].path, items[i].label) for i in plan.train],
            val_items=[(items[i].path, items[i].label) for i in plan.val],
            test_items=[(items[i].path, items[i].label) for i in plan.held_out],
            class_names=class_names,
            output_dir=fold_dir,
            base_weights=base_weights,
            on_epoch_end=report,
            should_stop=should_stop,
            runtime=runtime,
            extra_metadata={"fold": plan.fold + 1, "folds": k},
        )
        probabilities[plan.held_out] = result.test_probabilities
        calibrated[plan.held_out] = apply_temperature(result.test_probabilities, result.temperature)
        for index in plan.held_out:
            folds[index] = plan.fold
        reports.append(
            {
                "fold": plan.fold + 1,
                "train": len(plan.train),
                "val": len(plan.val),
                "held_out": len(plan.held_out),
                "temperature": result.temperature,
                "accuracy": result.metrics.get("accuracy"),
                "macro_f1": result.metrics.get("macro_f1"),
                "epochs": len(result.history),
            }
        )
        shutil.rmtree(fold_dir, ignore_errors=True)
    return CrossValResult(folds=folds, probabilities=probabilities, calibrated=calibrated, fold_reports=reports)
