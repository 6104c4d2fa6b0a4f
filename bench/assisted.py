"""Model-assisted curation on real data no one here wrote: scikit-learn's 1,797 digit scans as photos.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/assisted.py                 # 5 folds, tiny preset
    scripts/with-test-services.sh .venv/bin/python bench/assisted.py --images 600 --folds 2   # a quick look

1. Label errors. Each 8×8 scan becomes a 64×64 RGB PNG in the class folder of its digit (digit d → taxonomy
   index d; index 10 stays empty). A seeded 10 % of the images go into the folder of another digit instead: their
   source label is wrong. The folders are imported as a trusted source (one reader required, so source labels are
   final at once), frozen into a snapshot (0.8 / 0.1 / 0.1) and trained as one cross-validation run
   (`training_run_request(cross_val=K)`, the tiny preset), exactly as `train --cross-val K --sync` does. Among the
   top N suspected errors (N = the flipped images in the snapshot), precision and recall of the flipped images,
   for cleanlab's ranked issues and for the baseline: every item ranked by its out-of-fold probability of the
   given label, lowest first.

   Near duplicates: upscaled scans of one digit lie within a few pHash bits of each other by nature (at the
   default threshold of 10 bits they chain into a group of about 390 images), so the import runs at
   DERMCURATE_NEAR_DUPLICATE_THRESHOLD=4 (groups of at most 5); the groups still keep folds apart.

2. Scoring throughput. The run's model, promoted, scores every image with `score_all_images` (read from storage,
   decode, predict, bulk insert, ML_SCORING_CHUNK_SIZE at a time), against the bare model call
   (`Predictor.probabilities_of_arrays`) on the same images, already decoded, in batches of the same size. Both
   warm (the model is loaded and traced first); the median of 3 rounds (scores are deleted between rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Set before Django reads its settings.
os.environ.setdefault("DERMCURATE_REVIEWS_REQUIRED", "1")
os.environ.setdefault("DERMCURATE_NEAR_DUPLICATE_THRESHOLD", "4")
os.environ.setdefault("ML_BASE_WEIGHTS", "none")
os.environ.setdefault("DERMCURATE_IMPORT_WORKERS", "2")

from bench._django import bench_django, machine_line, markdown_table

SIDE = 64


def write_digits(root: Path, *, count: int, flip: float, seed: int) -> tuple[dict[str, int], set[str]]:
    """The digit PNGs in class folders; returns file stem → true digit and the stems whose folder is wrong."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from curation.demo_images import KAGGLE_FOLDERS

    digits = load_digits()
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(digits.target)), count)) if count < len(digits.target) else range(count)
    chosen = list(chosen)
    flipped = set(rng.sample(chosen, round(flip * len(chosen))))
    truth, wrong = {}, set()
    for number in chosen:
        digit = int(digits.target[number])
        given = (digit + rng.randrange(1, 10)) % 10 if number in flipped else digit
        stem = f"digit-{number:04d}"
        folder = root / KAGGLE_FOLDERS[given]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[number] / 16 * 255).round().astype(np.uint8)
        Image.fromarray(pixels).resize((SIDE, SIDE), Image.Resampling.BILINEAR).convert("RGB").save(
            folder / f"{stem}.png"
        )
        truth[stem] = digit
        if number in flipped:
            wrong.add(stem)
    return truth, wrong


def precision_recall(ranked: list[int], flipped: set[int], n: int) -> tuple[float, float]:
    top = ranked[:n]
    hits = len(set(top) & flipped)
    return (hits / len(top) if top else 0.0), (hits / len(flipped) if flipped else 0.0)


def label_errors(args, timings: dict) -> dict:
    import io

    from django.core.management import call_command

    from curation.models import Image, ImageSource, SnapshotItem
    from curation.services.snapshots import snapshot_create
    from ml.models import CrossValPrediction, LabelIssue
    from ml.services.runs import training_run_execute, training_run_request

    with tempfile.TemporaryDirectory(prefix="dermcurate-digits-") as folder:
        truth, wrong = write_digits(Path(folder), count=args.images, flip=args.flip, seed=args.seed)
        started = time.perf_counter()
        call_command("import_images", folder, "--source", "digits", "--trusted", stdout=io.StringIO())
        timings["import"] = time.perf_counter() - started
    image_of = {
        Path(path).stem: image_id for image_id, path in ImageSource.objects.values_list("image_id", "source_path")
    }
    started = time.perf_counter()
    snapshot = snapshot_create(name="digits", ratios=[0.8, 0.1, 0.1], seed=args.seed)
    timings["snapshot"] = time.perf_counter() - started
    in_snapshot = set(SnapshotItem.objects.filter(snapshot=snapshot).values_list("image_id", flat=True))
    flipped = {image_of[stem] for stem in wrong if stem in image_of} & in_snapshot
    overrides = json.loads(args.config)
    run, _ = training_run_request(
        snapshot=snapshot, preset=args.preset, config=overrides, cross_val=args.folds, sync=True
    )
    started = time.perf_counter()
    run = training_run_execute(run_id=run.pk)
    timings["cross_validation"] = time.perf_counter() - started
    if run.status != "succeeded":
        sys.exit(f"The cross-validation run failed: {run.error}\n{run.traceback}")
    n = len(flipped)
    issue_rows = list(LabelIssue.objects.filter(run=run).order_by("rank").values_list("image_id", "suggested__index"))
    issues = [image_id for image_id, _ in issue_rows]
    true_digit = {image_of[stem]: digit for stem, digit in truth.items() if stem in image_of}
    caught = [(image_id, suggested) for image_id, suggested in issue_rows if image_id in flipped]
    suggestion_right = sum(true_digit[image_id] == suggested for image_id, suggested in caught) / max(1, len(caught))
    codes = run.model_version.class_map
    index_of = {code: int(index) for index, code in codes.items()}
    rows = list(CrossValPrediction.objects.filter(run=run).values_list("image_id", "given_label__code", "calibrated"))
    baseline = [image_id for image_id, _, _ in sorted(rows, key=lambda row: row[2][index_of[row[1]]])]
    cleanlab_p, cleanlab_r = precision_recall(issues, flipped, n)
    baseline_p, baseline_r = precision_recall(baseline, flipped, n)
    all_p = len(set(issues) & flipped) / len(issues) if issues else 0.0
    return {
        "images": Image.objects.count(),
        "snapshot_items": len(in_snapshot),
        "flipped": n,
        "folds": args.folds,
        "preset": args.preset,
        "config": overrides,
        "final_test_accuracy": run.model_version.metrics.get("accuracy"),
        "fold_reports": run.cross_val_report,
        "issues_flagged": len(issues),
        "cleanlab_top_n": {"precision": cleanlab_p, "recall": cleanlab_r},
        "cleanlab_all_flagged": {"precision": all_p, "recall": len(set(issues) & flipped) / n if n else 0.0},
        "baseline_top_n": {"precision": baseline_p, "recall": baseline_r},
        "suggestion_is_the_true_digit": suggestion_right,
        "model_version": run.model_version.pk,
    }


def scoring_throughput(version_id: int, *, rounds: int) -> dict:
    import numpy as np
    from django.conf import settings

    from curation.models import Image
    from curation.services.storage import stored_files_read
    from ml.inference import predictor_for
    from ml.models import ImageScore, ModelVersion
    from ml.services.scoring import score_all_images

    version = ModelVersion.objects.get(pk=version_id)
    chunk = settings.ML_SCORING_CHUNK_SIZE
    predictor = predictor_for(version.pk)
    rows = list(Image.objects.exclude(status=Image.Status.EXCLUDED).order_by("pk").values_list("pk", "sanitized"))
    arrays = predictor.prepare([data for _, data in stored_files_read(rows)])
    predictor.probabilities_of_arrays(arrays[:chunk])  # traced once; the job's model is the same object
    scoring, bare = [], []
    for _ in range(rounds):
        ImageScore.objects.filter(model_version=version).delete()
        started = time.perf_counter()
        scored = score_all_images(model_version=version)
        scoring.append(time.perf_counter() - started)
        started = time.perf_counter()
        for start in range(0, len(arrays), chunk):
            predictor.probabilities_of_arrays(arrays[start : start + chunk])
        bare.append(time.perf_counter() - started)
    assert scored == len(rows) == ImageScore.objects.filter(model_version=version).count()
    scoring_rate, bare_rate = len(rows) / statistics.median(scoring), len(rows) / statistics.median(bare)
    return {
        "images": len(rows),
        "chunk": chunk,
        "scoring_images_per_second": scoring_rate,
        "bare_model_images_per_second": bare_rate,
        "ratio": scoring_rate / bare_rate,
        "scoring_seconds": scoring,
        "bare_seconds": bare,
        "input_mb": float(np.asarray(arrays).nbytes / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1797, help="digit scans used (all 1,797 by default)")
    parser.add_argument("--flip", type=float, default=0.1, help="share of source labels made wrong")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--config", default="{}", help="JSON overrides of the preset")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=3, help="scoring rounds (median)")
    args = parser.parse_args()

    started = time.perf_counter()
    with bench_django("dermcurate_bench_assisted"):
        from ml.models import ModelVersion

        timings: dict = {}
        errors = label_errors(args, timings)
        ModelVersion.objects.filter(pk=errors["model_version"]).update(is_production=True)
        started_scoring = time.perf_counter()
        scoring = scoring_throughput(errors["model_version"], rounds=args.rounds)
        timings["scoring_bench"] = time.perf_counter() - started_scoring
        machine = machine_line()
    timings["total"] = time.perf_counter() - started

    print(f"\n{machine}")
    print(
        f"\n### Suspected label errors: {errors['snapshot_items']} snapshot items, {errors['flipped']} flipped "
        f"(N), {errors['folds']} folds, preset {errors['preset']} {json.dumps(errors['config'])}\n"
    )
    print(
        markdown_table(
            ["ranking", "precision in the top N", "recall in the top N"],
            [
                [
                    "cleanlab find_label_issues (self-confidence rank)",
                    f"{errors['cleanlab_top_n']['precision']:.3f}",
                    f"{errors['cleanlab_top_n']['recall']:.3f}",
                ],
                [
                    "baseline: lowest out-of-fold probability of the given label",
                    f"{errors['baseline_top_n']['precision']:.3f}",
                    f"{errors['baseline_top_n']['recall']:.3f}",
                ],
            ],
        )
    )
    flagged = errors["cleanlab_all_flagged"]
    print(
        f"\ncleanlab flagged {errors['issues_flagged']} items in all: precision {flagged['precision']:.3f}, "
        f"recall {flagged['recall']:.3f}. Final model's test accuracy (on the flipped labels too): "
        f"{errors['final_test_accuracy']:.3f}. The suggested class is the true digit for "
        f"{errors['suggestion_is_the_true_digit']:.3f} of the flipped images cleanlab caught."
    )
    print(
        "Held-out accuracy per fold: "
        + ", ".join(f"{fold['accuracy']:.3f}" for fold in errors["fold_reports"])
        + " (judged against the given labels, flips included)."
    )
    print(
        f"\n### Scoring throughput: {scoring['images']} images, chunks of {scoring['chunk']}, "
        f"median of {len(scoring['scoring_seconds'])}\n"
    )
    print(
        markdown_table(
            ["path", "images/s"],
            [
                [
                    "score_all_images (storage read, decode, predict, bulk insert)",
                    f"{scoring['scoring_images_per_second']:.0f}",
                ],
                ["bare model call on decoded arrays, same batches", f"{scoring['bare_model_images_per_second']:.0f}"],
                ["ratio", f"{scoring['ratio']:.2f}"],
            ],
        )
    )
    print("\nSeconds: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in timings.items()))
    print(json.dumps({"label_errors": errors, "scoring": scoring, "seconds": timings}))


if __name__ == "__main__":
    main()
