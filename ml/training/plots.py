"""PNG plots for a model version page.

Figures are drawn on an Agg canvas directly instead of through pyplot, so no
GUI backend is ever chosen and no global figure state is shared between
training runs in one worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_training_curves(history: Sequence[dict], path: Path) -> Path:
    """Loss and accuracy per epoch, train against validation, with the start of stage 2 marked."""
    training_curves_figure(history).savefig(path, dpi=100)
    return Path(path)


def training_curves_figure(history: Sequence[dict]):
    from matplotlib.ticker import MaxNLocator

    figure = _new_figure(11, 4.2)
    epochs = [entry["epoch"] for entry in history]
    stage2_start = next((entry["epoch"] for entry in history if entry["stage"] == 2), None)
    for axes, metric, title in zip(figure.subplots(1, 2), ("loss", "accuracy"), ("Loss", "Accuracy"), strict=True):
        axes.plot(epochs, [entry[metric] for entry in history], marker=".", label="train")
        axes.plot(epochs, [entry[f"val_{metric}"] for entry in history], marker=".", label="validation")
        if stage2_start is not None:
            axes.axvline(stage2_start - 0.5, color="grey", linestyle="--", label="fine-tuning starts")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path) -> Path:
    """Counts in every cell; colour by the share of the true class, so that rare classes are as readable as
    common ones."""
    import numpy as np

    counts = np.asarray(matrix)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    size = 2.5 + 0.6 * len(class_names)
    figure = _new_figure(size + 1.5, size)
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of true class")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix, test split")
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    figure.savefig(path, dpi=100)
    return Path(path)


def plot_reliability(before: dict, after: dict, path: Path) -> Path:
    """Reliability diagram of the test split: accuracy against mean confidence per confidence bin, before and
    after temperature scaling; a calibrated model lies on the diagonal."""
    figure = _new_figure(5.5, 5)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for summary, label, marker in ((before, "before", "o"), (after, "after (temperature)", "s")):
        filled = [row for row in summary["bins"] if row["count"]]
        axes.plot(
            [row["confidence"] for row in filled],
            [row["accuracy"] for row in filled],
            marker=marker,
            label=f"{label}: ECE {summary['ece']:.3f}",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean confidence of the top class")
    axes.set_ylabel("accuracy")
    axes.set_title("Reliability, test split")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    figure.savefig(path, dpi=100)
    return Path(path)
