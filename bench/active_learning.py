"""Active learning through the real review queue: `uncertainty` against `random` on scikit-learn's digits.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/active_learning.py            # 5 seeds
    scripts/with-test-services.sh .venv/bin/python bench/active_learning.py --seeds 2  # quicker

The 1,797 digits (8×8, scikit-learn's bundled set) are split per seed into a held-out test third and a pool.
Each pool digit is an Image row (no file) whose class is the taxonomy class with the digit's index; the true
digit is the oracle. Both strategies start from the same 50 random digits, labeled through the review service
by one reader (one reader required). Each round a classifier is fitted on the labeled digits and judged on the
test third; then, for `uncertainty`, its probabilities for every pending digit are stored as the production
model's ImageScore rows (as a scoring job would) and the reader takes the next 50 images from
`review_queue_next` under DERMCURATE_QUEUE_ORDER=uncertainty (the queue's own SQL margin order and diversity
rule); for `random`, under DERMCURATE_QUEUE_ORDER=random. The oracle decides each, and so on up to 500 labels.

The classifier is a cheap proxy for `tiny`: scikit-learn's multinomial logistic regression on the 64 pixels
(scaled to 0–1), so that 2 strategies × 10 rounds × several seeds run in about a minute on two cores. Its
calibrated probabilities are its `predict_proba`. The reference is the same classifier fitted on the whole
pool; "labels needed" is the first round whose test accuracy reaches 90 % of that, and, for a finer figure,
where the straight line between two rounds crosses it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from pathlib import Path

from _django import bench_django, machine_line, markdown_table, truncate

START = 50
STEP = 50
STOP = 500
TARGET_SHARE = 0.9  # the target
# Stricter targets, reported beside it: on digits the proxy reaches 90 % of its full-pool accuracy within the first
# 50 labels added, whichever the order, so the 90 % figure is settled by the first round's step alone.
MORE_TARGET_SHARES = (0.95, 0.99)
GOAL_SAVING = 0.25
TEST_SHARE = 1 / 3
PICTURE = Path(__file__).with_name("active_learning.png")
STRATEGIES = ("random", "uncertainty")


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data / 16.0, data.target


def classifier():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0)


def make_pool(pool_indexes, *, seed: int) -> dict[int, int]:
    """One pending Image row per pool digit; returns image id → digit index."""
    from curation.models import Image

    random.seed(seed)  # the images' random_key: the random order
    rows = []
    for position, index in enumerate(pool_indexes):
        sha = hashlib.sha256(f"digit-{seed}-{index}".encode()).hexdigest()
        rows.append(
            Image(
                sha256=sha,
                original=f"originals/{sha}.png",
                sanitized=f"images/{sha}.jpg",
                thumbnail=f"thumbnails/{sha}.jpg",
                original_format="PNG",
                file_size=64,
                width=8,
                height=8,
                sanitized_width=8,
                sanitized_height=8,
                phash=position,
                dhash=position,
                metadata={"digit": int(index)},
            )
        )
    created = Image.objects.bulk_create(rows)
    return {image.pk: int(index) for image, index in zip(created, pool_indexes, strict=True)}


def production_model(codes: list[str]):
    from django.utils import timezone

    from curation.models import Snapshot
    from ml.models import ModelVersion, TrainingRun

    snapshot = Snapshot.objects.create(
        name="digits", seed=0, ratios=[1, 0, 0], content_hash="0" * 64, item_count=0, created_at=timezone.now()
    )
    run = TrainingRun.objects.create(snapshot=snapshot, preset="proxy", config={}, config_hash="digits")
    return ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config={"proxy": "logistic regression on pixels"},
        class_map={str(index): code for index, code in enumerate(codes)},
        artifact="models/digits-proxy",
        artifact_sha256="0" * 64,
        artifact_size=0,
        is_production=True,
    )


def store_scores(version, model, images: dict[int, int], pending: list[int], X, classes: int) -> None:
    """The proxy's probabilities for every pending image, as the production model's scores."""
    import numpy as np

    from ml.models import ImageScore

    ImageScore.objects.filter(model_version=version).delete()
    seen = list(model.classes_)
    probabilities = np.zeros((len(pending), classes))
    probabilities[:, seen] = model.predict_proba(X[[images[image_id] for image_id in pending]])
    ImageScore.objects.bulk_create(
        [
            ImageScore(
                model_version=version,
                image_id=image_id,
                probabilities=row.tolist(),
                calibrated=row.tolist(),
                top_index=int(row.argmax()),
            )
            for image_id, row in zip(pending, probabilities, strict=True)
        ],
        batch_size=2000,
    )


def label_through_the_queue(reader, *, images: dict[int, int], y, codes: list[str], count: int) -> list[int]:
    """The reader takes `count` images from the queue, the oracle deciding each; returns their ids."""
    from labeling.services.queue import review_queue_next
    from labeling.services.reviews import review_submit

    taken: list[int] = []
    while len(taken) < count:
        leases = review_queue_next(reader=reader, count=min(10, count - len(taken)))
        if not leases:
            break
        for lease in leases:
            review_submit(reader=reader, image_id=lease.image_id, label_code=codes[y[images[lease.image_id]]])
            taken.append(lease.image_id)
    return taken


def run_strategy(strategy: str, *, seed: int, X, y, pool, test, codes, reader, version) -> list[tuple[int, float]]:
    from django.test import override_settings

    from curation.models import Image
    from labeling.services.queue import review_lease_take
    from labeling.services.reviews import review_submit

    truncate(Image)
    images = make_pool(pool, seed=seed)
    start = random.Random(seed).sample(sorted(images), START)
    for image_id in start:
        review_lease_take(reader=reader, image=Image.objects.get(pk=image_id))
        review_submit(reader=reader, image_id=image_id, label_code=codes[y[images[image_id]]])
    labeled = list(start)
    curve = []
    with override_settings(DERMCURATE_QUEUE_ORDER=strategy, DERMCURATE_REVIEWS_REQUIRED=1):
        while True:
            model = classifier().fit(X[[images[i] for i in labeled]], y[[images[i] for i in labeled]])
            curve.append((len(labeled), float(model.score(X[test], y[test]))))
            if len(labeled) >= STOP:
                return curve
            if strategy == "uncertainty":
                pending = list(Image.objects.pending().values_list("pk", flat=True))
                store_scores(version, model, images, pending, X, len(codes))
            labeled += label_through_the_queue(reader, images=images, y=y, codes=codes, count=STEP)


def labels_needed(curve: list[tuple[int, float]], target: float) -> tuple[int | None, float | None]:
    """The first round at or above `target`, and where the line between rounds crosses it."""
    previous = None
    for labels, accuracy in curve:
        if accuracy >= target:
            if previous is None:
                return labels, float(labels)
            low_labels, low_accuracy = previous
            crossing = low_labels + (target - low_accuracy) / (accuracy - low_accuracy) * (labels - low_labels)
            return labels, crossing
        previous = (labels, accuracy)
    return None, None


def draw(curves: dict[str, list[list[tuple[int, float]]]], targets: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for strategy, colour in zip(STRATEGIES, ("#888888", "#2b6cb0"), strict=True):
        runs = curves[strategy]
        labels = [n for n, _ in runs[0]]
        columns = list(zip(*[[accuracy for _, accuracy in run] for run in runs], strict=True))
        axes.plot(labels, [statistics.mean(c) for c in columns], color=colour, marker="o", ms=3, label=strategy)
        axes.fill_between(labels, [min(c) for c in columns], [max(c) for c in columns], color=colour, alpha=0.18)
    axes.axhline(statistics.mean(targets), color="#c53030", ls="--", lw=1, label="90 % of full-pool accuracy")
    axes.set_xlabel("labels")
    axes.set_ylabel("test accuracy")
    axes.set_title(f"Digits through the review queue: mean and range over {len(targets)} seeds")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--picture", type=Path, default=PICTURE)
    arguments = parser.parse_args()

    with bench_django("dermcurate_bench_active_learning"):
        from sklearn.model_selection import train_test_split

        from accounts.services import user_create_or_update
        from curation.models import LabelClass

        print(machine_line())
        X, y = digits()
        codes = list(LabelClass.objects.filter(index__lt=10).order_by("index").values_list("code", flat=True))
        reader = user_create_or_update(username="oracle", role="reviewer", password="bench-not-secret")[0]  # noqa: S106
        version = production_model(codes)
        curves = {strategy: [] for strategy in STRATEGIES}
        rows, targets, full_accuracies = [], [], []
        began = time.perf_counter()
        for seed in range(arguments.seeds):
            pool, test = train_test_split(range(len(y)), test_size=TEST_SHARE, stratify=y, random_state=seed)
            pool, test = list(pool), list(test)
            full = float(classifier().fit(X[pool], y[pool]).score(X[test], y[test]))
            target = TARGET_SHARE * full
            targets.append(target)
            full_accuracies.append(full)
            row = [seed, f"{full:.3f}", f"{target:.3f}"]
            for strategy in STRATEGIES:
                curve = run_strategy(
                    strategy, seed=seed, X=X, y=y, pool=pool, test=test, codes=codes, reader=reader, version=version
                )
                curves[strategy].append(curve)
                at_round, crossing = labels_needed(curve, target)
                row += [at_round if at_round else f"> {STOP}", f"{crossing:.0f}" if crossing else "—"]
                row.append(" ".join(f"{accuracy:.3f}" for _, accuracy in curve))
            rows.append(row)
            print(f"seed {seed} done ({time.perf_counter() - began:.0f} s)", flush=True)

        header = ["seed", "full-pool accuracy", "90 % of it"]
        for strategy in STRATEGIES:
            header += [
                f"{strategy}: labels (round)",
                f"{strategy}: labels (crossing)",
                f"{strategy}: accuracy per round",
            ]
        print()
        print(markdown_table(header, rows))

        print()
        summary = []
        for share in (TARGET_SHARE, *MORE_TARGET_SHARES):
            reached = {
                strategy: [
                    labels_needed(curve, share * full_accuracy)
                    for curve, full_accuracy in zip(curves[strategy], full_accuracies, strict=True)
                ]
                for strategy in STRATEGIES
            }
            for position, name in ((0, "first round at it"), (1, "crossing of it")):
                means = {}
                for strategy in STRATEGIES:
                    values = [pair[position] for pair in reached[strategy]]
                    means[strategy] = None if None in values else statistics.mean(values)
                random_mean, uncertain_mean = means["random"], means["uncertainty"]
                saving = 1 - uncertain_mean / random_mean if random_mean and uncertain_mean else None
                never = {strategy: sum(pair[0] is None for pair in reached[strategy]) for strategy in STRATEGIES}
                summary.append(
                    [
                        f"{share:.0%} of full, {name}",
                        f"{random_mean:.0f}" if random_mean else f"> {STOP} in {never['random']} of {len(targets)}",
                        f"{uncertain_mean:.0f}"
                        if uncertain_mean
                        else f"> {STOP} in {never['uncertainty']} of {len(targets)}",
                        f"{saving:.0%}" if saving is not None else "—",
                        ("met" if saving is not None and saving >= GOAL_SAVING else "missed")
                        if share == TARGET_SHARE
                        else "",
                    ]
                )
        print(
            markdown_table(
                ["labels needed (mean over seeds)", "random", "uncertainty", "fewer", "goal ≥ 25 %"], summary
            )
        )
        mean_curves = {
            strategy: [statistics.mean(run[i][1] for run in curves[strategy]) for i in range(len(curves[strategy][0]))]
            for strategy in STRATEGIES
        }
        print()
        print(
            markdown_table(
                ["labels", *[f"{strategy} (mean accuracy)" for strategy in STRATEGIES]],
                [
                    [labels, *[f"{mean_curves[strategy][i]:.3f}" for strategy in STRATEGIES]]
                    for i, (labels, _) in enumerate(curves["random"][0])
                ],
            )
        )
        draw(curves, targets, arguments.picture)
        print(f"\nPicture: {arguments.picture}; {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
